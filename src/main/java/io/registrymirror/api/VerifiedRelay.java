package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.streams.WriteStream;
import java.security.MessageDigest;

/**
 * A blob's body on its way from upstream to one client, past the cache: hashed as it goes,
 * with its last byte held back until length and digest are verified, so that a truncated or
 * corrupt body never reaches the client complete. A failed check fails {@link #end()}; the
 * caller then resets the response. Backpressure is the response's.
 */
final class VerifiedRelay implements WriteStream<Buffer> {

  private final HttpServerResponse out;
  private final Digest digest;
  private final long size;
  private final MessageDigest hash;
  private long received;
  private Buffer held;

  /** @param size the length upstream announced, or -1 */
  VerifiedRelay(HttpServerResponse out, Digest digest, long size) {
    this.out = out;
    this.digest = digest;
    this.size = size;
    this.hash = digest.algorithm().newMessageDigest();
  }

  @Override
  public Future<Void> write(Buffer data) {
    int n = data.length();
    if (n == 0) {
      return Future.succeededFuture();
    }
    hash.update(((BufferInternal) data).getByteBuf().nioBuffer());
    received += n;
    if (held != null) {
      out.write(held);
    }
    held = data.getBuffer(n - 1, n);
    return n > 1 ? out.write(data.slice(0, n - 1)) : Future.succeededFuture();
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
    return held == null ? out.end() : out.end(held);
  }

  @Override
  public boolean writeQueueFull() {
    return out.writeQueueFull();
  }

  @Override
  public VerifiedRelay drainHandler(Handler<Void> handler) {
    out.drainHandler(handler);
    return this;
  }

  @Override
  public VerifiedRelay setWriteQueueMaxSize(int maxSize) {
    out.setWriteQueueMaxSize(maxSize);
    return this;
  }

  @Override
  public VerifiedRelay exceptionHandler(Handler<Throwable> handler) {
    out.exceptionHandler(handler);
    return this;
  }
}
