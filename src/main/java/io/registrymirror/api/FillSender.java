package io.registrymirror.api;

import io.registrymirror.store.BlobFill;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.http.HttpServerResponse;

/**
 * Streams a blob that is still being fetched to one client, from the fill's file, at the
 * client's own pace: a chunk is read only when the connection can take it, so memory per client
 * stays at one chunk whatever the blob size.
 *
 * <p>If the fill fails, the connection is reset: the client sees a broken transfer, never a
 * complete response.
 */
final class FillSender {

  private static final int CHUNK = 256 * 1024;

  private final BlobFill fill;
  private final HttpServerResponse response;
  private final long end;
  private long position;
  private boolean done;

  /** Sends {@code [start, end)} of the blob; {@code end} -1 means to its end, whatever that is. */
  FillSender(BlobFill fill, HttpServerResponse response, long start, long end) {
    this.fill = fill;
    this.response = response;
    this.position = start;
    this.end = end;
  }

  void start() {
    response.closeHandler(v -> finish());
    next();
  }

  private void next() {
    if (done) {
      return;
    }
    if (end >= 0 && position >= end) {
      response.end();
      finish();
      return;
    }
    if (response.writeQueueFull()) {
      response.drainHandler(v -> next());
      return;
    }
    int max = end < 0 ? CHUNK : (int) Math.min(CHUNK, end - position);
    // Read straight into pooled direct memory: the socket takes it without another copy.
    ByteBuf chunk = PooledByteBufAllocator.DEFAULT.directBuffer(max);
    fill.read(position, chunk, max).onComplete(read -> {
      if (done || read.failed() || read.result() == 0) {
        chunk.release();
        if (!done) {
          if (read.failed() || end >= 0) {
            // A failed fill, or one shorter than announced: never let it look complete.
            response.reset();
          } else {
            response.end();
          }
          finish();
        }
        return;
      }
      position += read.result();
      // Vert.x does not take ownership of a pooled buffer: it goes back once it is on the wire.
      response.write(BufferInternal.buffer(chunk)).onComplete(written -> chunk.release());
      next();
    });
  }

  private void finish() {
    if (!done) {
      done = true;
      fill.release();
    }
  }
}
