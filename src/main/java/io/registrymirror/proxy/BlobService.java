package io.registrymirror.proxy;

import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.concurrent.SingleFlight;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.store.BlobFill;
import io.registrymirror.store.BlobStore;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Blobs through the cache: a hit is a file; a miss starts one upstream fetch that every
 * concurrent request for the same digest shares, whichever repository it names.
 */
public final class BlobService {

  private static final EventLog LOG = EventLog.of(BlobService.class);

  private final BlobStore store;
  private final BlobFetch fetch;
  private final Map<Digest, Flight> fills = new ConcurrentHashMap<>();

  public BlobService(BlobStore store, CacheWrites writes, MirrorMetrics metrics) {
    this.store = store;
    this.fetch = new BlobFetch(store, writes, metrics);
  }

  /** An upstream fetch in progress, and the request it is made for. */
  private record Flight(Target target, Promise<BlobFill> fill) {}

  /**
   * The blob's size without fetching it: from the cache, a running fill, or an upstream HEAD
   * (whose size is -1 when upstream does not say).
   */
  public Future<BlobStat> stat(Target target, Digest digest) {
    if (!store.loaded()) {
      return store.probe(digest).compose(v -> statIndexed(target, digest));
    }
    return statIndexed(target, digest);
  }

  private Future<BlobStat> statIndexed(Target target, Digest digest) {
    Long size = store.size(digest);
    if (size == null) {
      return statUncached(target, digest);
    }
    // The index does not know of a file removed by hand: HEAD looks, so that it says what a
    // GET would find, and a missing blob is fetched again rather than promised.
    return store.present(digest).compose(present -> {
      if (present) {
        return Future.succeededFuture(new BlobStat(size, true));
      }
      LOG.warn("blob.file.missing", "digest", digest);
      store.forget(digest);
      return statUncached(target, digest);
    });
  }

  private Future<BlobStat> statUncached(Target target, Digest digest) {
    Flight flight = fills.get(digest);
    Future<BlobFill> fill = flight == null ? null : flight.fill().future();
    if (fill != null && fill.succeeded() && fill.result().expectedSize() >= 0) {
      return Future.succeededFuture(new BlobStat(fill.result().expectedSize(), false));
    }
    return target.upstream().headBlob(target.name(), digest).map(size -> new BlobStat(size, false));
  }

  public boolean isCached(Digest digest) {
    return store.size(digest) != null;
  }

  /** Drops a blob from the index after its file went missing, so that it is fetched again. */
  public void forget(Digest digest) {
    store.forget(digest);
  }

  /** Opens the blob for reading, joining or starting a fill on a miss. */
  public Future<BlobSource> open(Target target, Digest digest) {
    if (!store.loaded()) {
      return store.probe(digest).compose(v -> openIndexed(target, digest));
    }
    return openIndexed(target, digest);
  }

  private Future<BlobSource> openIndexed(Target target, Digest digest) {
    // The index is consulted once, under the map's lock: a fill that just finished has indexed
    // its blob before it leaves the map, so no second fetch can start for it.
    Long[] size = {null};
    Flight ours = new Flight(target, Promise.promise());
    Flight flight = fills.computeIfAbsent(digest, d -> {
      size[0] = store.hold(d);
      return size[0] != null ? null : ours;
    });
    if (flight == null) {
      return Future.succeededFuture(cached(digest, size[0]));
    }
    if (flight == ours) {
      Future<BlobFill> fill = fetch.start(target, digest);
      fill.onFailure(err -> fills.remove(digest, flight));
      fill.onSuccess(f -> f.completion().onComplete(r -> fills.remove(digest, flight)));
      fill.onComplete(flight.fill());
    }
    Future<BlobSource> source = flight.fill().future().compose(f -> {
      GrowingBlob blob = f.open();
      if (blob != null) {
        return Future.succeededFuture(new BlobSource.Filling(blob));
      }
      if (f.writeFailed()) {
        // The disk failed under the fill: it serves the readers it has, but the start of the
        // blob may be gone from memory. This client gets it from upstream like any blob the
        // cache cannot take.
        return Future.failedFuture(new BlobFetch.Unstorable(OciError.UNAVAILABLE.exception(
            "the cache could not store " + digest)));
      }
      // The fill ended between the lookup and now: its blob is in the index, or it failed.
      Long done = store.hold(digest);
      return done != null ? Future.succeededFuture(cached(digest, done))
          : Future.failedFuture(OciError.UNAVAILABLE.exception("fetching " + digest + " from upstream failed"));
    }, err -> {
      // Upstream scopes blobs by repository: a fetch joined through another repository (or
      // registry) may fail there and still succeed through this one.
      if (!flight.target().equals(target) && err instanceof RegistryException e
          && e.error() == OciError.BLOB_UNKNOWN) {
        fills.remove(digest, flight);
        return openIndexed(target, digest);
      }
      return Future.failedFuture(err);
    });
    // A blob the cache cannot take is fetched for each client apart. The request goes out from
    // the caller's context, so that the response reaches the caller in the tick it arrives and
    // nothing of it can pass before the caller reads it.
    return SingleFlight.onCallerContext(source).recover(err -> err instanceof BlobFetch.Unstorable
        ? target.upstream().getBlob(target.name(), digest).map(BlobSource.Uncached::new)
        : Future.failedFuture(err));
  }

  /** A held cached blob, released once by whoever sends it. */
  private BlobSource.Cached cached(Digest digest, long size) {
    AtomicBoolean released = new AtomicBoolean();
    return new BlobSource.Cached(store.file(digest), size, () -> {
      if (released.compareAndSet(false, true)) {
        store.release(digest);
      }
    });
  }

  /**
   * Fetches a blob into the cache unless it is there: completes once it is, or fails with the
   * fetch. A blob the cache cannot take is not fetched.
   */
  public Future<Void> warm(Target target, Digest digest) {
    return open(target, digest).compose(source -> {
      if (source instanceof BlobSource.Filling filling) {
        Flight flight = fills.get(digest);
        // Not read: held, it would keep bytes in memory for nothing should the disk fail.
        filling.blob().release();
        return flight == null ? Future.succeededFuture() : flight.fill().future().compose(BlobFill::completion);
      }
      if (source instanceof BlobSource.Uncached uncached) {
        uncached.download().cancel();
      } else if (source instanceof BlobSource.Cached cached) {
        cached.release().run();
      }
      return Future.succeededFuture();
    });
  }

  /**
   * Stops every fetch in progress and waits until each has cleaned up after itself (or, if
   * already verified, installed its blob): nothing is left half-written behind a shutdown.
   */
  public Future<Void> close() {
    List<Future<Void>> done = new ArrayList<>();
    for (Flight flight : fills.values()) {
      done.add(flight.fill().future()
          .compose(f -> {
            f.abort(OciError.UNAVAILABLE.exception("the mirror is shutting down"));
            return f.completion();
          })
          .otherwiseEmpty());
    }
    return Future.all(done).mapEmpty();
  }
}
