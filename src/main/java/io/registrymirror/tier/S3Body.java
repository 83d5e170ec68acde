package io.registrymirror.tier;

import io.netty.buffer.Unpooled;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.concurrent.BodySource;
import io.registrymirror.error.OciError;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.ByteBuffer;
import java.util.function.LongSupplier;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import software.amazon.awssdk.core.async.ResponsePublisher;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;

/**
 * An object's body from the bucket, as the SDK publishes it, into a sink: one chunk asked for at
 * a time, and the next only once the sink has room, so that the bucket is read at the pace the
 * sink (a fill, its disk and its readers) takes it. Chunks are handed over on the caller's
 * context, in order.
 */
final class S3Body implements BodySource {

  private final Vertx vertx;
  private final ResponsePublisher<GetObjectResponse> body;
  private volatile Subscription subscription;
  private volatile boolean piped;
  private volatile boolean cancelled;

  S3Body(Vertx vertx, ResponsePublisher<GetObjectResponse> body) {
    this.vertx = vertx;
    this.body = body;
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
    body.subscribe(new Subscriber<ByteBuffer>() {
      @Override
      public void onSubscribe(Subscription s) {
        context.runOnContext(v -> {
          subscription = s;
          if (cancelled) {
            s.cancel();
          } else {
            s.request(1);
          }
        });
      }

      @Override
      public void onNext(ByteBuffer chunk) {
        context.runOnContext(v -> {
          // The SDK hands each chunk over for good: it is wrapped, not copied.
          sink.write(Unpooled.wrappedBuffer(chunk));
          if (cancelled) {
            return;
          }
          if (sink.full()) {
            sink.onDrain(() -> subscription.request(1));
          } else {
            subscription.request(1);
          }
        });
      }

      @Override
      public void onError(Throwable err) {
        context.runOnContext(v -> done.tryFail(OciError.UNAVAILABLE.exception(
            "reading from object storage failed: " + err.getMessage(), err)));
      }

      @Override
      public void onComplete() {
        context.runOnContext(v -> sink.end().onComplete(done));
      }
    });
    return done.future();
  }

  @Override
  public void cancel() {
    cancelled = true;
    if (subscription != null) {
      subscription.cancel();
    } else if (!piped) {
      // Nobody will read it: subscribing and cancelling lets the SDK close the response.
      piped = true;
      body.subscribe(new Subscriber<ByteBuffer>() {
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
}
