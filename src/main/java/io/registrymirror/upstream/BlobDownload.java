package io.registrymirror.upstream;

import io.registrymirror.concurrent.BodySink;
import io.registrymirror.concurrent.BodySource;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import java.util.function.LongSupplier;

/**
 * One blob coming from upstream: its announced size and version, and its body piped into a
 * sink as Netty's buffers ({@link BodyTap}). A transfer that breaks off, or stays below the upstream's minimum rate, is resumed from
 * where the sink stands with a Range request, a bounded number of times, so that whoever reads
 * the sink sees no error. Only a response that named its version can be resumed: without a
 * validator to send in {@code If-Range}, a rest could come from another version of the content.
 */
public final class BlobDownload implements BodySource {

  private static final EventLog LOG = EventLog.of(BlobDownload.class);

  /** How many times one download asks upstream for the rest of a transfer that broke off. */
  public static final int RESUMES = 3;

  private final Vertx vertx;
  private final UpstreamClient client;
  private final RepositoryName name;
  private final Digest digest;
  private final UpstreamExchange.Tapped first;
  private final long expectedSize;
  /** Where the rest of a broken transfer comes from; null when it cannot be resumed. */
  private final Rest rest;
  /** Whether a transfer below the upstream's minimum rate is cut (and resumed). */
  private final boolean rateWatched;
  /** The request whose response is being piped; null between resumes. */
  private HttpClientRequest running;
  private boolean piped;
  private boolean cancelled;

  /** The rest of the blob from an offset, as a 206 whose body is tapped. */
  interface Rest {
    Future<UpstreamExchange.Tapped> from(long offset);
  }

  /** A download from upstream itself, resumed from upstream when it named its content's version. */
  BlobDownload(Vertx vertx, UpstreamClient client, RepositoryName name, Digest digest,
      UpstreamExchange.Tapped first) {
    this(vertx, client, name, digest, first, resumable(client, name, digest, first), true);
  }

  /**
   * @param rest where a break is resumed from, or null
   * @param rateWatched whether to cut (and resume) a transfer below upstream's minimum rate
   */
  BlobDownload(Vertx vertx, UpstreamClient client, RepositoryName name, Digest digest,
      UpstreamExchange.Tapped first, Rest rest, boolean rateWatched) {
    this.vertx = vertx;
    this.client = client;
    this.name = name;
    this.digest = digest;
    this.first = first;
    this.expectedSize = UpstreamResponses.contentLength(first.response());
    this.rest = rest;
    this.rateWatched = rateWatched;
  }

  private static Rest resumable(UpstreamClient client, RepositoryName name, Digest digest,
      UpstreamExchange.Tapped first) {
    String validator = validator(first.response());
    return validator == null ? null : offset -> client.getBlobFrom(name, digest, offset, validator);
  }

  /** The length upstream announced, or -1 when it sent none. */
  @Override
  public long expectedSize() {
    return expectedSize;
  }

  /**
   * Pipes the body into {@code sink} on the caller's context, resuming a break up to
   * {@link #RESUMES} times from {@code received}, the bytes the sink has taken so far. Completes
   * when the sink's end does; fails with the break that could not be resumed, and the sink is
   * then not ended.
   */
  @Override
  public Future<Void> pipeTo(BodySink sink, LongSupplier received) {
    Promise<Void> done = Promise.promise();
    piped = true;
    transfer(first, sink, received, RESUMES, done);
    if (rateWatched) {
      watchRate(received, done.future());
    }
    return done.future();
  }

  private void transfer(UpstreamExchange.Tapped answer, BodySink sink, LongSupplier received,
      int resumesLeft, Promise<Void> done) {
    HttpClientResponse resp = answer.response();
    running = resp.request();
    // Vert.x sees only the response's end and an empty chunk now and then: those are dropped.
    resp.handler(empty -> { }).exceptionHandler(err -> { }).resume();
    answer.tap().pipeTo(sink).onComplete(r -> {
      // This response is done with: a reset now would reach it with no one left to handle it.
      running = null;
      if (r.succeeded()) {
        done.tryComplete();
        return;
      }
      Throwable err = r.cause();
      long offset = received.getAsLong();
      if (resumesLeft == 0 || rest == null || cancelled || expectedSize < 0
          || offset >= expectedSize) {
        done.tryFail(err);
        return;
      }
      LOG.info("blob.fill.resuming", "upstream", client.name(), "digest", digest, "offset", offset,
          "of", expectedSize, "error", err.getMessage());
      rest.from(offset).onComplete(next -> {
        if (next.failed()) {
          done.tryFail(err);
        } else if (cancelled) {
          UpstreamResponses.abandon(next.result().response());
          done.tryFail(err);
        } else {
          transfer(next.result(), sink, received, resumesLeft - 1, done);
        }
      });
    });
  }

  /**
   * Cuts a transfer that stays below the upstream's minimum rate for a whole window: a drip
   * keeps the idle timeout from ever firing, and would hold the download and its readers for
   * hours. The cut is resumed like any other break, so a transfer that speeds up again is kept.
   */
  private void watchRate(LongSupplier received, Future<Void> done) {
    long window = client.config().rateWindow().toMillis();
    long minBytes = client.config().minRate() * window / 1000;
    if (minBytes <= 0) {
      return;
    }
    long[] last = {received.getAsLong()};
    long timer = vertx.setPeriodic(window, id -> {
      long now = received.getAsLong();
      if (!cancelled && (expectedSize < 0 || now < expectedSize) && now - last[0] < minBytes) {
        LOG.warn("blob.transfer.slow", "upstream", client.name(), "digest", digest,
            "bytes", now - last[0], "ms", window);
        reset();
      }
      last[0] = now;
    });
    done.onComplete(r -> vertx.cancelTimer(timer));
  }

  /** Stops the download for good: the response being piped is cut, and nothing is resumed. */
  @Override
  public void cancel() {
    cancelled = true;
    if (piped) {
      reset();
    } else {
      UpstreamResponses.abandon(first.response());
    }
  }

  private void reset() {
    HttpClientRequest request = running;
    if (request != null) {
      request.reset();
    }
  }

  /** What {@code If-Range} can send back: a strong ETag, or Last-Modified; null for neither. */
  private static String validator(HttpClientResponse resp) {
    String etag = resp.getHeader(HttpHeaders.ETAG);
    if (etag != null && !etag.startsWith("W/")) {
      return etag;
    }
    return resp.getHeader(HttpHeaders.LAST_MODIFIED);
  }
}
