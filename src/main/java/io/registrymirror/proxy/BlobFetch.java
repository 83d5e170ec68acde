package io.registrymirror.proxy;

import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.store.BlobFill;
import io.registrymirror.store.BlobStore;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.NotStored;
import io.registrymirror.upstream.BlobDownload;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;

/**
 * One blob from its upstream into a new fill in the cache, with the metrics and log lines of the
 * transfer. Whether to fetch, and who shares the fetch, is {@link BlobService}'s business.
 */
final class BlobFetch {

  private static final EventLog LOG = EventLog.of(BlobFetch.class);

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

  BlobFetch(BlobStore store, CacheWrites writes, MirrorMetrics metrics, PeerClient peers) {
    this.peers = peers;
    this.store = store;
    this.writes = writes;
    this.metrics = metrics;
  }

  /**
   * Starts the fetch: succeeds with the fill once upstream's headers are in and its body is
   * being piped, fails with {@link Unstorable} when the cache cannot take the blob, or with
   * upstream's refusal.
   *
   * <p>The cache file exists before the upstream request is sent, so that the response can be
   * piped into it the moment its headers arrive: a response left without a reader, even
   * briefly, could lose its end or its error and hang the fill.
   */
  Future<BlobFill> start(Target target, Digest digest) {
    return start(target, digest, null, true);
  }

  /**
   * As {@link #start(Target, Digest)}, from the replica {@code peer} rather than upstream when
   * it is not null, and installing the blob only if {@code keep}.
   */
  Future<BlobFill> start(Target target, Digest digest, String peer, boolean keep) {
    long started = System.nanoTime();
    return store.create(digest, keep)
        .recover(err -> {
          writes.failed("blob", err);
          return Future.failedFuture(new Unstorable(err));
        })
        .map(fill -> fill.onWriteFailure(err -> writes.failed("blob", err)))
        .compose(fill -> (peer == null ? target.upstream().getBlob(target.name(), digest)
                : peers.getBlob(peer, target, digest))
            .map(download -> {
              long length = download.expectedSize();
              if (length == 0 && !digest.matches(new byte[0])) {
                // Nothing would be left to hold back: refuse before any client sees headers.
                download.cancel();
                throw OciError.UNAVAILABLE.exception("upstream sent an empty body for " + digest);
              }
              fill.expect(length);
              pipe(target, peer, download, fill, started);
              return fill;
            })
            .onFailure(fill::abort));
  }

  private void pipe(Target target, String peer, BlobDownload download, BlobFill fill, long started) {
    String upstream = target.upstream().name();
    // Where the bytes came from: upstream itself, or the replica that owns the blob.
    String source = peer == null ? "upstream" : peer;
    metrics.fillStarted();
    download.pipeTo(fill.input(), fill::received).onFailure(fill::abort);
    fill.completion().onComplete(r -> {
      long ms = (System.nanoTime() - started) / 1_000_000;
      if (r.succeeded()) {
        writes.succeeded();
        long size = fill.size();
        metrics.fillEnded(true, size);
        if (peer == null) {
          metrics.upstreamReceived(target.upstream().name(), size);
        } else {
          metrics.peerReceived(size);
        }
        LOG.info("blob.filled", "upstream", upstream, "source", source, "repository", target.name(),
            "digest", fill.digest(), "bytes", size, "ms", ms);
      } else {
        // Stop the transfer if the fill failed on our side (digest, no reader left) while it still runs.
        download.cancel();
        metrics.fillEnded(false, 0);
        if (r.cause() instanceof NotStored) {
          // Said once per episode by CacheWrites; its readers got the blob.
          LOG.debug("blob.fill.unstored", "upstream", upstream, "source", source, "repository", target.name(),
              "digest", fill.digest(), "bytes", fill.size(), "ms", ms, "error", r.cause().getMessage());
          return;
        }
        LOG.warn("blob.fill.failed", "upstream", upstream, "source", source, "repository", target.name(), "digest", fill.digest(), "ms", ms, "error", r.cause().getMessage());
      }
    });
  }
}
