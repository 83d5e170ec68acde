package io.registrymirror.tier;

import io.registrymirror.concurrent.BodySource;
import io.registrymirror.config.S3Config;
import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.async.AsyncResponseTransformer;
import software.amazon.awssdk.core.async.ResponsePublisher;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.SdkEventLoopGroup;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3AsyncClient;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * The shared object storage tier: verified blobs and manifests are written through to a bucket
 * under their digest ({@code blobs/sha256/<hex>}, {@code manifests/sha256/<hex>} with the media
 * type as the object's content type), and a local miss reads the bucket before upstream, so that
 * a new or replaced replica starts warm. Both ways stream: a blob goes up from its file and comes
 * down into a fill at the fill's pace; a manifest is read whole, under the memory budget. What
 * comes down is verified against its digest like anything from upstream.
 *
 * <p>The bucket is a cache as well: when it fails, the blob or manifest comes from upstream, and
 * a write that fails is logged and forgotten.
 */
public final class S3Tier {

  private static final EventLog LOG = EventLog.of(S3Tier.class);

  private final Vertx vertx;
  private final S3AsyncClient client;
  private final String bucket;
  private final BodyBudget budget;
  private final MirrorMetrics metrics;
  /** Writes under way, which a close lets finish. */
  private final Set<Future<Void>> writes = ConcurrentHashMap.newKeySet();

  private S3Tier(Vertx vertx, S3AsyncClient client, String bucket, BodyBudget budget, MirrorMetrics metrics) {
    this.vertx = vertx;
    this.client = client;
    this.bucket = bucket;
    this.budget = budget;
    this.metrics = metrics;
  }

  /** A client of the configured bucket; credentials from the SDK's default chain. */
  public static S3Tier create(Vertx vertx, S3Config config, BodyBudget budget, MirrorMetrics metrics) {
    var builder = S3AsyncClient.builder()
        .httpClientBuilder(NettyNioAsyncHttpClient.builder()
            .eventLoopGroupBuilder(SdkEventLoopGroup.builder().numberOfThreads(2))
            .maxConcurrency(64)
            .connectionTimeout(Duration.ofSeconds(5))
            .connectionAcquisitionTimeout(Duration.ofSeconds(10))
            .readTimeout(S3Body.STALL)
            .writeTimeout(Duration.ofSeconds(30)))
        .region(region(config.region()))
        .forcePathStyle(config.pathStyle())
        // Blobs and manifests are verified against their digests: the SDK's own checksums would
        // only add trailers that S3-compatible servers do not all take.
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
    if (config.endpoint() != null) {
      builder.endpointOverride(config.endpoint());
    }
    return new S3Tier(vertx, builder.build(), config.bucket(), budget, metrics);
  }

  private static Region region(String configured) {
    if (configured != null) {
      return Region.of(configured);
    }
    try {
      return new DefaultAwsRegionProviderChain().getRegion();
    } catch (RuntimeException none) {
      return Region.US_EAST_1;
    }
  }

  public String bucket() {
    return bucket;
  }

  static String blobKey(Digest digest) {
    return "blobs/" + digest.algorithm().id() + "/" + digest.hex();
  }

  static String manifestKey(Digest digest) {
    return "manifests/" + digest.algorithm().id() + "/" + digest.hex();
  }

  /**
   * The blob's body from the bucket, to be piped into a fill; empty when the bucket has none (or
   * fails). A transfer that breaks off is resumed from the bucket with a ranged GET: the object
   * under a digest never changes, and the fill checks the digest anyway.
   */
  public Future<Optional<BodySource>> getBlob(Digest digest) {
    return Future.fromCompletionStage(getObject(blobKey(digest), null), vertx.getOrCreateContext())
        .map(body -> {
          metrics.s3Request("get", "hit");
          return Optional.<BodySource>of(new S3Body(vertx, body, digest, offset ->
              Future.fromCompletionStage(getObject(blobKey(digest), "bytes=" + offset + "-"), vertx.getOrCreateContext())
                  .onComplete(r -> metrics.s3Request("get", r.succeeded() ? "resumed" : "error"))));
        })
        .otherwise(err -> missed("get blob", digest, err));
  }

  private CompletableFuture<ResponsePublisher<GetObjectResponse>> getObject(String key, String range) {
    return client.getObject(r -> r.bucket(bucket).key(key).range(range), AsyncResponseTransformer.toPublisher());
  }

  /**
   * The manifest from the bucket, verified against its digest, held under the memory budget while
   * {@code use} runs; empty when the bucket has none (or fails).
   */
  public <T> Future<Optional<T>> getManifest(Digest digest, Function<Manifest, Future<T>> use) {
    return Future.fromCompletionStage(getObject(manifestKey(digest), null), vertx.getOrCreateContext())
        .compose(body -> {
          Long length = body.response().contentLength();
          if (length == null || length > Manifest.MAX_SIZE) {
            S3Body.discard(body);
            return Future.failedFuture(OciError.MANIFEST_INVALID.exception("object storage holds " + digest
                + " with " + length + " bytes"));
          }
          return budget.reserve(length).compose(lease -> read(body, length.intValue()).compose(bytes -> {
            String type = MediaTypes.bare(body.response().contentType());
            Manifest m = new Manifest(digest, type, bytes);
            if (!Manifest.hash(digest.algorithm(), bytes).equals(digest) || type.isEmpty()) {
              return Future.failedFuture(OciError.MANIFEST_INVALID.exception("object storage holds a manifest for "
                  + digest + " that does not match it"));
            }
            metrics.s3Request("get", "hit");
            return use.apply(m).map(Optional::of);
          }).andThen(r -> lease.release()));
        })
        .recover(err -> Future.succeededFuture(missed("get manifest", digest, err)));
  }

  /** An object that is not there is a miss; anything else is logged, and a miss as well. */
  private <T> Optional<T> missed(String what, Digest digest, Throwable err) {
    Throwable cause = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
    if (cause instanceof NoSuchKeyException || cause instanceof S3Exception e && e.statusCode() == 404) {
      metrics.s3Request("get", "miss");
    } else {
      metrics.s3Request("get", "error");
      LOG.warn("s3.read.failed", "what", what, "digest", digest, "error", cause.toString());
    }
    return Optional.empty();
  }

  /** A small object's bytes, at most {@code length}, into one buffer of that size. */
  private Future<Buffer> read(ResponsePublisher<GetObjectResponse> body, int length) {
    Promise<Buffer> done = Promise.promise();
    Buffer bytes = Buffer.buffer(length);
    var context = vertx.getOrCreateContext();
    Subscription[] subscribed = {null};
    // A manifest is small: it must arrive whole within the stall limit of a blob's chunk, for the
    // SDK does not report a connection that breaks off mid-body.
    long timer = vertx.setTimer(S3Body.STALL.toMillis(), id -> {
      synchronized (bytes) {
        if (subscribed[0] != null) {
          subscribed[0].cancel();
        }
      }
      done.tryFail(new TimeoutException(
          "object storage sent no whole manifest within " + S3Body.STALL.toSeconds() + " s"));
    });
    done.future().onComplete(r -> vertx.cancelTimer(timer));
    body.subscribe(new Subscriber<ByteBuffer>() {
      @Override
      public void onSubscribe(Subscription s) {
        synchronized (bytes) {
          subscribed[0] = s;
        }
        s.request(Long.MAX_VALUE);
      }

      @Override
      public void onNext(ByteBuffer chunk) {
        synchronized (bytes) {
          if (bytes.length() + chunk.remaining() > length) {
            subscribed[0].cancel();
            context.runOnContext(v -> done.tryFail(OciError.MANIFEST_INVALID.exception(
                "object storage sent more than it announced")));
            return;
          }
          byte[] part = new byte[chunk.remaining()];
          chunk.get(part);
          bytes.appendBytes(part);
        }
      }

      @Override
      public void onError(Throwable err) {
        context.runOnContext(v -> done.tryFail(err));
      }

      @Override
      public void onComplete() {
        context.runOnContext(v -> done.tryComplete(bytes));
      }
    });
    return done.future();
  }

  /** Writes a verified blob's file through to the bucket, unless the bucket has it already. */
  public Future<Void> putBlob(Digest digest, Path file, long size) {
    return put(blobKey(digest), "application/octet-stream", file, size, digest);
  }

  /** Writes a verified manifest's file through to the bucket, with its media type. */
  public Future<Void> putManifest(Digest digest, String mediaType, Path file, long size) {
    return put(manifestKey(digest), mediaType, file, size, digest);
  }

  private Future<Void> put(String key, String type, Path file, long size, Digest digest) {
    Future<Void> put = upload(key, type, file, size, digest);
    writes.add(put);
    return put.andThen(r -> writes.remove(put));
  }

  private Future<Void> upload(String key, String type, Path file, long size, Digest digest) {
    var context = vertx.getOrCreateContext();
    return Future.fromCompletionStage(client.headObject(r -> r.bucket(bucket).key(key)), context)
        .<Void>mapEmpty()
        .recover(missing -> Future.fromCompletionStage(client.putObject(
                r -> r.bucket(bucket).key(key).contentType(type).contentLength(size), AsyncRequestBody.fromFile(file)),
            context).<Void>mapEmpty()
            .onSuccess(v -> {
              metrics.s3Request("put", "ok");
              LOG.debug("s3.written", "key", key, "bytes", size);
            }))
        .onFailure(err -> {
          metrics.s3Request("put", "error");
          Throwable cause = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
          LOG.warn("s3.write.failed", "digest", digest, "key", key, "error", cause.toString());
        });
  }

  /** Deletes the bucket's copy of a blob that turned out not to be the blob. */
  public Future<Void> deleteBlob(Digest digest) {
    LOG.warn("s3.object.wrong", "key", blobKey(digest));
    return Future.fromCompletionStage(client.deleteObject(r -> r.bucket(bucket).key(blobKey(digest))),
            vertx.getOrCreateContext()).<Void>mapEmpty()
        .onSuccess(v -> metrics.s3Request("delete", "ok"))
        .onFailure(err -> {
          metrics.s3Request("delete", "error");
          LOG.warn("s3.delete.failed", "key", blobKey(digest), "error", err.toString());
        });
  }

  /**
   * Lets the writes under way finish, for up to {@code wait} (a replica that stops has often just
   * fetched what the others will need), then closes the client.
   */
  public Future<Void> close(Duration wait) {
    Promise<Void> waited = Promise.promise();
    long timer = vertx.setTimer(Math.max(1, wait.toMillis()), id -> waited.tryComplete());
    Future.join(List.copyOf(writes)).onComplete(r -> {
      vertx.cancelTimer(timer);
      waited.tryComplete();
    });
    // The client waits for its threads to stop: off the event loop.
    return waited.future().compose(v -> vertx.executeBlocking(() -> {
      client.close();
      return null;
    }, false));
  }
}
