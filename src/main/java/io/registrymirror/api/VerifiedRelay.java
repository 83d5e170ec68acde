package io.registrymirror.api;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.error.OciError;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.internal.buffer.BufferInternal;
import java.security.MessageDigest;

/**
 * A blob's body on its way from upstream to one client, past the cache: hashed as it goes,
 * with its last byte held back until length and digest are verified, so that a truncated or
 * corrupt body never reaches the client complete. A failed check fails {@link #end()}; the
 * caller then resets the response and {@link #discard}s the relay. Backpressure is the
 * response's.
 */
final class VerifiedRelay implements BodySink {

  private final HttpServerResponse out;
  private final Digest digest;
  private final long size;
  private final MessageDigest hash;
  private long received;
  private ByteBuf held;

  /** @param size the length upstream announced, or -1 */
  VerifiedRelay(HttpServerResponse out, Digest digest, long size) {
    this.out = out;
    this.digest = digest;
    this.size = size;
    this.hash = digest.algorithm().newMessageDigest();
  }

  /** Bytes taken from upstream so far: where a resumed transfer starts. */
  long received() {
    return received;
  }

  @Override
  public void write(ByteBuf data) {
    int n = data.readableBytes();
    if (n == 0) {
      data.release();
      return;
    }
    hash.update(data.nioBuffer());
    received += n;
    if (held != null) {
      send(held);
    }
    int from = data.readerIndex();
    held = data.retainedSlice(from + n - 1, 1);
    if (n > 1) {
      send(data.retainedSlice(from, n - 1));
    }
    data.release();
  }

  /** Vert.x does not take ownership of a buffer it is given: it goes back once on the wire. */
  private void send(ByteBuf chunk) {
    out.write(BufferInternal.buffer(chunk)).onComplete(r -> chunk.release());
  }

  @Override
  public Future<Void> end() {
    if (size >= 0 && received != size) {
      return Future.failedFuture(OciError.UNAVAILABLE.exception(
          "upstream sent " + received + " bytes of " + size + " for " + digest));
    }
    Digest actual = Digest.finish(digest.algorithm(), hash.digest());
    if (!actual.equals(digest)) {
      return Future.failedFuture(OciError.UNAVAILABLE.exception("upstream content for " + digest
          + " hashed to " + actual));
    }
    ByteBuf last = held;
    held = null;
    return last == null ? out.end() : out.end(BufferInternal.buffer(last)).onComplete(r -> last.release());
  }

  /** Lets go of the byte held back: the relay failed. */
  void discard() {
    if (held != null) {
      held.release();
      held = null;
    }
  }

  @Override
  public boolean full() {
    return out.writeQueueFull();
  }

  @Override
  public void onDrain(Runnable drained) {
    out.drainHandler(v -> drained.run());
  }
}
