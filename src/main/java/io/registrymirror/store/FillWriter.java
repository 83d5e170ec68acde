package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.error.OciError;
import io.registrymirror.oci.Digest;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * The write side of a {@link BlobFill}, confined to its writer context: upstream's buffers, as
 * they came off the connection, are kept for readers and handed to a worker in batches of a
 * megabyte or more, so the event loop only queues buffers and threads change hands rarely. A
 * batch is hashed and appended to the file, both straight from those buffers; once the disk has
 * failed, only hashed. Upstream is paused while too much is queued, while the fill
 * holds too much for its readers, or while all fills together are short of memory, and resumed
 * when that changes. Each batch done is reported to the fill.
 */
final class FillWriter implements BodySink {

  /** Bytes queued for the disk before the upstream is paused: with what a fill keeps, its bound. */
  static final long HIGH_WATER = 4L * 1024 * 1024;

  /** Bytes gathered before they are handed to the disk: fewer, larger writes and thread hops. */
  private static final long BATCH = 1024 * 1024;

  private final Vertx vertx;
  private final Context writer;
  private final FillMemory memory;
  private final FillFile file;
  private final BlobFill fill;

  /** Received, not yet handed to the disk; the fill's recent bytes hold their references. */
  private final ArrayDeque<ByteBuf> pending = new ArrayDeque<>();
  private long queuedBytes;
  private boolean flushing;
  private boolean ended;
  /** Length and digest were checked, which takes the hash: once. */
  private boolean checked;
  /** False once a write failed: later batches are only hashed. */
  private boolean toDisk = true;
  private Runnable drainHandler;
  private boolean awaitingMemory;

  FillWriter(Vertx vertx, Context writer, FillMemory memory, FillFile file, BlobFill fill) {
    this.vertx = vertx;
    this.writer = writer;
    this.memory = memory;
    this.file = file;
    this.fill = fill;
  }

  @Override
  public void write(ByteBuf data) {
    if (ended || fill.isFailed() || !data.isReadable()) {
      data.release();
      return;
    }
    int n = data.readableBytes();
    pending.add(data);
    fill.took(data);
    queuedBytes += n;
    flush();
  }

  /** No more bytes: the rest goes out, then the fill verifies what it got; completes with the fill. */
  @Override
  public Future<Void> end() {
    ended = true;
    flush();
    return fill.completion();
  }

  @Override
  public boolean full() {
    return queuedBytes >= HIGH_WATER || memory.exhausted() || fill.holdsTooMuch();
  }

  @Override
  public void onDrain(Runnable drained) {
    this.drainHandler = drained;
    flush(); // with memory short, whatever is queued goes to disk now, to be given back
    maybeDrain();
  }

  /** Drops whatever is queued (the fill's recent bytes hold it): the fill has failed. */
  void stop() {
    pending.clear();
    queuedBytes = 0;
  }

  /**
   * Resumes the upstream once this fill's queue is short again, it holds little enough for its
   * readers, and memory is to be had. Runs on the writer context.
   */
  void maybeDrain() {
    Runnable drain = drainHandler;
    if (drain == null || queuedBytes >= HIGH_WATER || fill.holdsTooMuch()) {
      return; // the flush under way, or a reader moving on, calls again
    }
    if (memory.exhausted()) {
      if (!awaitingMemory) {
        awaitingMemory = true;
        memory.onAvailable(writer, () -> {
          awaitingMemory = false;
          maybeDrain();
        });
      }
      return;
    }
    drainHandler = null;
    drain.run();
  }

  private void flush() {
    if (flushing || fill.isFailed()) {
      return;
    }
    if (pending.isEmpty()) {
      if (ended && !checked) {
        checked = true;
        check();
      }
      return;
    }
    if (!ended && queuedBytes < BATCH && !memory.exhausted()) {
      return;
    }
    flushing = true;
    // The batch holds references of its own: a fill that fails lets go of its recent bytes at
    // once, while the worker may still be reading them.
    ByteBuf[] held = new ByteBuf[pending.size()];
    ByteBuffer[] batch = new ByteBuffer[held.length];
    long bytes = 0;
    for (int i = 0; i < batch.length; i++) {
      held[i] = pending.poll().retain();
      batch[i] = held[i].nioBuffer();
      bytes += batch[i].remaining();
    }
    boolean disk = toDisk;
    long n = bytes;
    vertx.executeBlocking(() -> disk ? file.append(batch) : file.hash(batch), false)
        .onComplete(result -> {
          for (ByteBuf b : held) {
            b.release();
          }
          flushed(result, disk, n);
        });
  }

  /** Every byte is hashed: the fill is verified if its length and digest are right, else fails. */
  private void check() {
    long size = fill.size();
    long expected = fill.expectedSize();
    Digest digest = fill.digest();
    if (expected >= 0 && size != expected) {
      wrong("upstream sent " + size + " bytes of " + expected + " for " + digest);
      return;
    }
    Digest actual = Digest.finish(digest.algorithm(), file.hash());
    if (!actual.equals(digest)) {
      wrong("upstream content for " + digest + " hashed to " + actual);
      return;
    }
    fill.verified();
  }

  private void wrong(String what) {
    fill.abort(OciError.UNAVAILABLE.exception(what, new WrongContent(what)));
  }

  private void flushed(AsyncResult<Long> result, boolean disk, long n) {
    flushing = false;
    if (fill.isFailed()) {
      return;
    }
    if (result.failed() && !disk) {
      fill.abort(result.cause()); // hashing alone has nothing to fail on: something is badly wrong
      return;
    }
    queuedBytes -= n;
    if (result.failed()) {
      toDisk = false;
      fill.diskFailed(result.cause());
    }
    fill.hashed(n, disk && result.succeeded());
    flush();
    maybeDrain();
  }
}
