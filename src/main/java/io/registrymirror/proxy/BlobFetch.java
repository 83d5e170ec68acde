package io.registrymirror.proxy;

import io.registrymirror.concurrent.BodySource;
import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.store.BlobFill;
import io.registrymirror.store.BlobStore;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.NotStored;
import io.registrymirror.store.WrongContent;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.tier.S3Tier;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;
import java.nio.file.Path;
import java.util.Optional;

/**
 * One blob from its source (upstream, the object storage tier, or the replica that owns it) into a new fill in the cache, with the metrics and log lines of the
 * transfer. Whether to fetch, and who shares the fetch, is {@link BlobService}'s business.
 */
final class BlobFetch {

  private static final EventLog LOG = EventLog.of(BlobFetch.class);
  private static final String UPSTREAM = "upstream";
  private static final String S3 = "s3";

  /** Why a fill could not start: the cache cannot take the blob, not that upstream failed. */
  static final class Unstorable extends RuntimeException {
    Unstorable(Throwable cause) {
      super("the cache cannot store the blob: " + cause, cause, false, false);
    }
  }

  private final BlobStore store;
  private final CacheWrites writes;
  private final MirrorMetrics metrics;
  private final PeerClient peers;
  private final S3Tier tier;

  /**
   * @param peers how blobs come from the replica that owns them; null without a cluster
   * @param tier the object storage tier; null without one
   */
  BlobFetch(BlobStore store, CacheWrites writes, MirrorMetrics metrics, PeerClient peers, S3Tier tier) {
    this.peers = peers;
    this.tier = tier;
    this.store = store;
    this.writes = writes;
    this.metrics = metrics;
  }

  /**
   * Starts the fetch: succeeds with the fill once the source's headers are in and its body is
   * being piped, fails with {@link Unstorable} when the cache cannot take the blob, or with the
   * source's refusal. The source is the replica {@code peer} when it is not null; else the
   * object storage tier when it holds the blob, else upstream. The blob is installed only if
   * {@code keep}; one that came from upstream is then written through to the tier.
   *
   * <p>The cache file exists before the upstream request is sent, so that the response can be
   * piped into it the moment its headers arrive: a response left without a reader, even
   * briefly, could lose its end or its error and hang the fill.
   */
  Future<BlobFill> start(Target target, Digest digest, String peer, boolean keep) {
    long started = System.nanoTime();
    return store.create(digest, keep)
        .recover(err -> {
          writes.failed("blob", err);
          return Future.failedFuture(new Unstorable(err));
        })
        .map(fill -> fill.onWriteFailure(err -> writes.failed("blob", err)))
        .compose(fill -> body(target, digest, peer)
            .map(body -> {
              long length = body.source().expectedSize();
              if (length == 0 && !digest.matches(new byte[0])) {
                // Nothing would be left to hold back: refuse before any client sees headers.
                body.source().cancel();
                throw OciError.UNAVAILABLE.exception(body.from() + " sent an empty body for " + digest);
              }
              fill.expect(length);
              pipe(target, body, fill, started);
              return fill;
            })
            .onFailure(fill::abort));
  }

  /** A blob's body, and where it comes from: {@code upstream}, {@code s3}, or a replica's address. */
  private record Body(BodySource source, String from) {}

  private Future<Body> body(Target target, Digest digest, String peer) {
    if (peer != null) {
      return peers.getBlob(peer, target, digest).map(download -> new Body(download, peer));
    }
    Future<Optional<BodySource>> stored = tier == null ? Future.succeededFuture(Optional.empty()) : tier.getBlob(digest);
    return stored.compose(found -> found.isPresent() ? Future.succeededFuture(new Body(found.get(), S3))
        : target.upstream().getBlob(target.name(), digest).map(download -> new Body(download, UPSTREAM)));
  }

  private void pipe(Target target, Body body, BlobFill fill, long started) {
    String upstream = target.upstream().name();
    metrics.fillStarted();
    body.source().pipeTo(fill.input(), fill::received).onFailure(fill::abort);
    fill.completion().onComplete(r -> {
      long ms = (System.nanoTime() - started) / 1_000_000;
      if (r.succeeded()) {
        writes.succeeded();
        long size = fill.size();
        metrics.fillEnded(true, size);
        switch (body.from()) {
          case UPSTREAM -> {
            metrics.upstreamReceived(upstream, size);
            writeThrough(fill.digest());
          }
          case S3 -> { }
          default -> metrics.peerReceived(size);
        }
        LOG.info("blob.filled", "upstream", upstream, "source", body.from(), "repository", target.name(),
            "digest", fill.digest(), "bytes", size, "ms", ms);
      } else {
        // Stop the transfer if the fill failed on our side (digest, no reader left) while it still runs.
        body.source().cancel();
        metrics.fillEnded(false, 0);
        if (body.from().equals(S3) && WrongContent.in(r.cause())) {
          // The bucket's copy is bad: it goes, and the next request fetches from upstream.
          tier.deleteBlob(fill.digest());
        }
        if (r.cause() instanceof NotStored) {
          // Said once per episode by CacheWrites; its readers got the blob.
          LOG.debug("blob.fill.unstored", "upstream", upstream, "source", body.from(), "repository", target.name(),
              "digest", fill.digest(), "bytes", fill.size(), "ms", ms, "error", r.cause().getMessage());
          return;
        }
        LOG.warn("blob.fill.failed", "upstream", upstream, "source", body.from(), "repository", target.name(),
            "digest", fill.digest(), "ms", ms, "error", r.cause().getMessage());
      }
    });
  }

  /** Copies an installed blob to the object storage tier, held in the cache meanwhile. */
  private void writeThrough(Digest digest) {
    Long size = tier == null ? null : store.hold(digest);
    if (size != null) {
      tier.putBlob(digest, Path.of(store.file(digest)), size).onComplete(r -> store.release(digest));
    }
  }
}
