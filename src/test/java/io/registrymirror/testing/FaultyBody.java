package io.registrymirror.testing;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.streams.WriteStream;
import java.nio.charset.StandardCharsets;

/**
 * The client-facing response body, applying a body fault ({@link Fault.CutAfter}, {@link Fault.FlipByte},
 * {@link Fault.HoldAfter}, {@link Fault.Drip}, {@link Fault.LongBody}, {@link Fault.WrongLength}) chunk by chunk
 * and otherwise delegating, so backpressure works exactly as when piping to the response itself.
 */
final class FaultyBody implements WriteStream<Buffer> {

  private static final int DRIP_TICK_MS = 100;
  private static final byte[] JUNK = "junk after the body\r\n".getBytes(StandardCharsets.US_ASCII);

  private final Vertx vertx;
  private final HttpServerResponse out;
  private final Fault fault;
  private long position;
  private Future<Void> lastWrite = Future.succeededFuture();
  private Buffer held;
  private Future<Void> released;
  private Handler<Void> drainHandler;
  // A drip: the bytes taken from the upstream but not yet sent, and the promise of their sending.
  private Buffer dripping;
  private int dripped;
  private Promise<Void> drippedAll;
  private long ticker;

  FaultyBody(Vertx vertx, HttpServerResponse out, Fault fault) {
    this.vertx = vertx;
    this.out = out;
    this.fault = fault;
  }

  @Override
  public Future<Void> write(Buffer chunk) {
    if (held != null) {
      held.appendBuffer(chunk);
      return Future.succeededFuture();
    }
    if (fault instanceof Fault.Drip drip) {
      return drip(chunk, drip.bytesPerSecond());
    }
    long start = position;
    position += chunk.length();
    if (fault instanceof Fault.HoldAfter hold && position > hold.bytes() && start <= hold.bytes()) {
      int keep = (int) (hold.bytes() - start);
      held = chunk.slice(keep, chunk.length()).copy();
      Future<Void> kept = out.write(chunk.slice(0, keep));
      // The rest follows only once the kept part is written: the release may run on another
      // thread, and a write from there could otherwise overtake it.
      released = kept.compose(v -> Future.fromCompletionStage(hold.release(), vertx.getOrCreateContext()))
          .compose(v -> {
            Buffer rest = held;
            held = null;
            return out.write(rest);
          });
      released.onComplete(r -> drained());
      return kept;
    }
    if (fault instanceof Fault.CutAfter cut && position > cut.bytes()) {
      int keep = (int) Math.max(0, cut.bytes() - start);
      // Failing only once the kept bytes are written lets them reach the client before the close.
      return out.write(chunk.slice(0, keep))
          .compose(v -> Future.failedFuture("body cut after " + cut.bytes() + " bytes"));
    }
    if (fault instanceof Fault.FlipByte flip && flip.offset() >= start && flip.offset() < position) {
      int at = (int) (flip.offset() - start);
      chunk = chunk.copy();
      chunk.setByte(at, (byte) (chunk.getByte(at) ^ 0xFF));
    }
    lastWrite = out.write(chunk);
    return lastWrite;
  }

  /**
   * Queues a chunk for the drip; the queue counts as full until it is sent, so the upstream
   * is read no faster than the drip. The write completes once the chunk is on its way.
   */
  private Future<Void> drip(Buffer chunk, int bytesPerSecond) {
    if (dripping == null) {
      dripping = chunk.copy();
      dripped = 0;
      drippedAll = Promise.promise();
      ticker = vertx.setPeriodic(DRIP_TICK_MS, id -> tick(bytesPerSecond));
    } else {
      dripping.appendBuffer(chunk);
    }
    return drippedAll.future();
  }

  private void tick(int bytesPerSecond) {
    if (out.closed()) {
      // The client gave up: failing the write fails the pipe, which lets go of the upstream.
      vertx.cancelTimer(ticker);
      drippedAll.tryFail("the client went away during a drip");
      return;
    }
    int n = Math.min(dripping.length() - dripped, Math.max(1, bytesPerSecond * DRIP_TICK_MS / 1000));
    lastWrite = out.write(dripping.slice(dripped, dripped + n).copy());
    dripped += n;
    if (dripped == dripping.length()) {
      vertx.cancelTimer(ticker);
      dripping = null;
      drippedAll.complete();
      drained();
    }
  }

  private void drained() {
    Handler<Void> drain = drainHandler;
    if (drain != null) {
      drainHandler = null;
      drain.handle(null);
    }
  }

  @Override
  public Future<Void> end() {
    if (held != null) {
      // The upstream finished while the body is held: end once the rest has been written.
      return released.compose(v -> out.end());
    }
    if (dripping != null) {
      return drippedAll.future().compose(v -> end());
    }
    if (fault instanceof Fault.LongBody longBody) {
      Buffer junk = Buffer.buffer(longBody.extra());
      for (int i = 0; i < longBody.extra(); i++) {
        junk.appendByte(JUNK[i % JUNK.length]);
      }
      // Failing closes the connection, once the extra bytes have reached the client.
      return lastWrite.compose(v -> out.write(junk))
          .compose(v -> Future.failedFuture("sent " + longBody.extra() + " bytes past the body"));
    }
    if (fault instanceof Fault.WrongLength) {
      // Never end the response: the connection closes right after the real body.
      return lastWrite.compose(v -> Future.failedFuture("body sent under a wrong Content-Length"));
    }
    return out.end();
  }

  @Override
  public WriteStream<Buffer> exceptionHandler(Handler<Throwable> handler) {
    out.exceptionHandler(handler);
    return this;
  }

  @Override
  public WriteStream<Buffer> setWriteQueueMaxSize(int maxSize) {
    out.setWriteQueueMaxSize(maxSize);
    return this;
  }

  @Override
  public boolean writeQueueFull() {
    return held != null || dripping != null || out.writeQueueFull();
  }

  @Override
  public WriteStream<Buffer> drainHandler(Handler<Void> handler) {
    drainHandler = handler;
    out.drainHandler(handler);
    return this;
  }
}
