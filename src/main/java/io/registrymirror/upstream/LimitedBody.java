package io.registrymirror.upstream;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.codec.BodyCodec;
import io.vertx.ext.web.codec.spi.BodyStream;

/**
 * A web client body of at most {@code max} bytes: the web client's own codecs buffer whatever
 * arrives, and a small JSON answer (a token) must not be able to fill the heap. One byte too many
 * fails the exchange, and the web client then resets the request.
 */
final class LimitedBody implements BodyStream<Buffer> {

  private final int max;
  private final Buffer body = Buffer.buffer();
  private final Promise<Buffer> result = Promise.promise();

  private LimitedBody(int max) {
    this.max = max;
  }

  static BodyCodec<Buffer> codec(int max) {
    return () -> new LimitedBody(max);
  }

  @Override
  public Future<Buffer> result() {
    return result.future();
  }

  @Override
  public void handle(Throwable failure) {
    result.tryFail(failure);
  }

  @Override
  public Future<Void> write(Buffer data) {
    if (body.length() + data.length() > max) {
      RuntimeException tooLarge = new IllegalStateException("the answer exceeds " + max + " bytes");
      result.tryFail(tooLarge);
      return Future.failedFuture(tooLarge);
    }
    body.appendBuffer(data);
    return Future.succeededFuture();
  }

  @Override
  public Future<Void> end() {
    result.tryComplete(body);
    return Future.succeededFuture();
  }

  @Override
  public LimitedBody exceptionHandler(Handler<Throwable> handler) {
    return this;
  }

  @Override
  public LimitedBody setWriteQueueMaxSize(int maxSize) {
    return this;
  }

  @Override
  public boolean writeQueueFull() {
    return false;
  }

  @Override
  public LimitedBody drainHandler(Handler<Void> handler) {
    return this;
  }
}
