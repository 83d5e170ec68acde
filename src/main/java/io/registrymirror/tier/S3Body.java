package io.registrymirror.tier;

import io.netty.buffer.Unpooled;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.concurrent.BodySource;
import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.registrymirror.upstream.BlobDownload;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import software.amazon.awssdk.core.async.ResponsePublisher;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;

/**
 * An object's body from the bucket, as the SDK publishes it, into a sink: one chunk asked for at
 * a time, and the next only once the sink has room, so that the bucket is read at the pace the
 * sink (a fill, its disk and its readers) takes it. Chunks are handed over on the caller's
 * context, in order. A transfer that breaks off or stalls is resumed where the sink stands, a
 * bounded number of times, so that whoever reads the sink sees no error.
 */
final class S3Body implements BodySource {

  private static final EventLog LOG = EventLog.of(S3Body.class);

  /**
   * A read that gets no chunk for this long while it asks for one is cut and resumed: the SDK
   * does not report a connection that breaks off mid-body to the body's subscriber, which would
   * wait for ever (its read timeout covers a connection that stays open).
   */
  static final Duration STALL = Duration.ofSeconds(30);
  private static final long STALL_CHECK_MS = 1000;

  /** The rest of the object from an offset: a ranged GET of the same key. */
  interface Rest {
    Future<ResponsePublisher<GetObjectResponse>> from(long offset);
  }

  private final Vertx vertx;
  private final ResponsePublisher<GetObjectResponse> body;
  private final Digest digest;
  private final Rest rest;
  private volatile Subscription subscription;
  private volatile boolean piped;
  private volatile boolean cancelled;

  S3Body(Vertx vertx, ResponsePublisher<GetObjectResponse> body, Digest digest, Rest rest) {
    this.vertx = vertx;
    this.body = body;
    this.digest = digest;
    this.rest = rest;
  }

  @Override
  public long expectedSize() {
    Long length = body.response().contentLength();
    return length == null ? -1 : length;
  }

  @Override
  public Future<Void> pipeTo(BodySink sink, LongSupplier received) {
    Context context = vertx.getOrCreateContext();
    Promise<Void> done = Promise.promise();
    piped = true;
    read(body, context, sink, received, BlobDownload.RESUMES, done);
    return done.future();
  }

  private void read(ResponsePublisher<GetObjectResponse> part, Context context, BodySink sink,
      LongSupplier received, int resumesLeft, Promise<Void> done) {
    // All on the context: whichever of its end, a break or a stall comes first ends this part.
    Part state = new Part();
    state.watch = vertx.setPeriodic(STALL_CHECK_MS, id -> {
      if (state.asked && !state.over && System.nanoTime() - state.lastChunk > STALL.toNanos()) {
        state.end();
        subscription.cancel();
        resume(new TimeoutException("no data for " + STALL.toSeconds() + " s"), context, sink, received,
            resumesLeft, done);
      }
    });
    part.subscribe(new Subscriber<ByteBuffer>() {
      @Override
      public void onSubscribe(Subscription s) {
        context.runOnContext(v -> {
          subscription = s;
          if (cancelled) {
            s.cancel();
          } else {
            state.ask(s);
          }
        });
      }

      @Override
      public void onNext(ByteBuffer chunk) {
        context.runOnContext(v -> {
          if (state.over) {
            return;
          }
          state.asked = false;
          // The SDK hands each chunk over for good: it is wrapped, not copied.
          sink.write(Unpooled.wrappedBuffer(chunk));
          if (cancelled) {
            return;
          }
          if (sink.full()) {
            sink.onDrain(() -> state.ask(subscription));
          } else {
            state.ask(subscription);
          }
        });
      }

      @Override
      public void onError(Throwable err) {
        context.runOnContext(v -> {
          if (!state.over) {
            state.end();
            resume(err, context, sink, received, resumesLeft, done);
          }
        });
      }

      @Override
      public void onComplete() {
        context.runOnContext(v -> {
          if (!state.over) {
            state.end();
            sink.end().onComplete(done);
          }
        });
      }
    });
  }

  /** One response's reading, on the context: whether a chunk is asked for, since when, and whether it is over. */
  private final class Part {
    boolean asked;
    boolean over;
    long lastChunk = System.nanoTime();
    long watch;

    void ask(Subscription s) {
      if (!over) {
        asked = true;
        lastChunk = System.nanoTime();
        s.request(1);
      }
    }

    void end() {
      over = true;
      vertx.cancelTimer(watch);
    }
  }

  private void resume(Throwable err, Context context, BodySink sink, LongSupplier received, int resumesLeft,
      Promise<Void> done) {
    RuntimeException failed =
        OciError.UNAVAILABLE.exception("reading from object storage failed: " + err.getMessage(), err);
    long offset = received.getAsLong();
    long size = expectedSize();
    if (resumesLeft == 0 || cancelled || size < 0 || offset >= size) {
      done.tryFail(failed);
      return;
    }
    LOG.info("blob.fill.resuming", "source", "s3", "digest", digest, "offset", offset, "of", size,
        "error", err.getMessage());
    rest.from(offset).onComplete(next -> {
      if (next.failed()) {
        done.tryFail(failed);
        return;
      }
      ResponsePublisher<GetObjectResponse> part = next.result();
      String range = part.response().contentRange();
      if (cancelled || range == null || !range.startsWith("bytes " + offset + "-")) {
        // Not the rest asked for: nobody reads it, and the transfer ends with the break.
        discard(part);
        done.tryFail(failed);
        return;
      }
      read(part, context, sink, received, resumesLeft - 1, done);
    });
  }

  @Override
  public void cancel() {
    cancelled = true;
    if (subscription != null) {
      subscription.cancel();
    } else if (!piped) {
      piped = true;
      discard(body);
    }
  }

  /** Nobody will read it: subscribing and cancelling lets the SDK close the response. */
  static void discard(ResponsePublisher<GetObjectResponse> unread) {
    unread.subscribe(new Subscriber<ByteBuffer>() {
      @Override
      public void onSubscribe(Subscription s) {
        s.cancel();
      }

      @Override
      public void onNext(ByteBuffer chunk) {
      }

      @Override
      public void onError(Throwable err) {
      }

      @Override
      public void onComplete() {
      }
    });
  }
}
