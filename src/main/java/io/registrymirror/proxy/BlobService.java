package io.registrymirror.proxy;

import io.registrymirror.cluster.Peers;
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
import io.registrymirror.tier.S3Tier;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.Set;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Blobs through the cache: a hit is a file; a miss starts one upstream fetch that every
 * concurrent request for the same digest shares, whichever repository it names.
 *
 * <p>In a cluster, a miss on a blob another replica owns is fetched from that owner instead (its
 * own fetch from upstream then serves the whole cluster), shared the same way by this replica's
 * clients, and kept only with {@code cluster.keepCopies}. The fetches of the two kinds are kept
 * apart: a request from another replica never joins a fetch from a replica, so two replicas
 * that each take the other for the owner cannot wait on each other.
 */
public final class BlobService {

  private static final EventLog LOG = EventLog.of(BlobService.class);

  /** How long a copy of a blob another replica owns stays joinable after its fill. */
  static final Duration COPY_LINGER = Duration.ofSeconds(60);

  private final Vertx vertx;
  private final BlobStore store;
  private final BlobFetch fetch;
  private final Peers peers;
  private final PeerClient peerClient;
  /** Fetches from upstream: of blobs this replica owns, or that another replica asked for. */
  private final Map<Digest, Flight> fills = new ConcurrentHashMap<>();
  /** Fetches from the replica that owns the blob, for this replica's clients. */
  private final Map<Digest, Flight> relays = new ConcurrentHashMap<>();
  /** What ends each copy that lingers, run by its timer or by a close. */
  private final Set<Runnable> lingering = ConcurrentHashMap.newKeySet();

  /**
   * @param peerClient how blobs are fetched from the other replicas; null when there are none
   * @param tier the object storage tier; null without one
   */
  public BlobService(Vertx vertx, BlobStore store, CacheWrites writes, MirrorMetrics metrics, Peers peers,
      PeerClient peerClient, S3Tier tier) {
    this.vertx = vertx;
    this.store = store;
    this.peers = peers;
    this.peerClient = peerClient;
    this.fetch = new BlobFetch(store, writes, metrics, peerClient, tier);
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
    Flight flight = flight(digest);
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
    return open(target, digest, false);
  }

  /**
   * As {@link #open(Target, Digest)}; {@code forPeer} when another replica asks, which is never
   * sent on to a third: this replica answers it from its cache or from upstream.
   */
  public Future<BlobSource> open(Target target, Digest digest, boolean forPeer) {
    if (!store.loaded()) {
      return store.probe(digest).compose(v -> openIndexed(target, digest, forPeer));
    }
    return openIndexed(target, digest, forPeer);
  }

  private Future<BlobSource> openIndexed(Target target, Digest digest, boolean forPeer) {
    String owner = forPeer ? null : peers.owner(digest);
    // A fetch from upstream under way here serves every request, whoever owns the blob.
    if (owner == null || fills.containsKey(digest)) {
      return openFrom(fills, target, digest, null, forPeer);
    }
    // The owner gone, upstream is the way; the fetch from it is shared like any other.
    return openFrom(relays, target, digest, owner, false).recover(err -> err instanceof PeerClient.PeerUnavailable
        ? openFrom(fills, target, digest, null, false)
        : Future.failedFuture(err));
  }

  /**
   * Opens the blob from the cache, or from a fetch in {@code flights}: joined when one is under
   * way, started from {@code peer} (or upstream when null) when none is.
   */
  private Future<BlobSource> openFrom(Map<Digest, Flight> flights, Target target, Digest digest, String peer,
      boolean forPeer) {
    // The index is consulted once, under the map's lock: a fill that just finished has indexed
    // its blob before it leaves the map, so no second fetch can start for it.
    Long[] size = {null};
    Flight ours = new Flight(target, Promise.promise());
    Flight flight = flights.computeIfAbsent(digest, d -> {
      size[0] = store.hold(d);
      return size[0] != null ? null : ours;
    });
    if (flight == null) {
      return Future.succeededFuture(cached(digest, size[0]));
    }
    if (flight == ours) {
      boolean keep = peer == null || peers.keepCopies();
      Future<BlobFill> fill = fetch.start(target, digest, peer, keep);
      fill.onFailure(err -> flights.remove(digest, flight));
      fill.onSuccess(f -> f.completion().onComplete(r -> {
        if (r.succeeded() && !keep) {
          linger(flights, digest, flight, f);
        } else {
          flights.remove(digest, flight);
        }
      }));
      fill.onComplete(flight.fill());
    }
    Future<BlobSource> source = flight.fill().future().compose(f -> {
      GrowingBlob blob = f.open();
      if (blob != null) {
        // A complete copy goes out as a cached file does (sendfile), held until it is sent.
        String copy = f.copyFile();
        return Future.succeededFuture(copy == null ? new BlobSource.Filling(blob)
            : new BlobSource.Cached(copy, f.size(), once(blob::release)));
      }
      if (f.writeFailed()) {
        // The disk failed under the fill: it serves the readers it has, but the start of the
        // blob may be gone from memory. This client gets it past the cache like any blob the
        // cache cannot take.
        return Future.failedFuture(new BlobFetch.Unstorable(OciError.UNAVAILABLE.exception(
            "the cache could not store " + digest)));
      }
      // The fill ended between the lookup and now: its blob is in the index, or it failed, or
      // it was a copy not kept, whose readers are done; this request starts the next.
      Long done = store.hold(digest);
      if (done != null) {
        return Future.succeededFuture(cached(digest, done));
      }
      if (peer != null && f.completion().succeeded()) {
        return openIndexed(target, digest, forPeer);
      }
      return Future.failedFuture(OciError.UNAVAILABLE.exception("fetching " + digest + " from upstream failed"));
    }, err -> {
      // Upstream scopes blobs by repository: a fetch joined through another repository (or
      // registry) may fail there and still succeed through this one.
      if (!flight.target().equals(target) && err instanceof RegistryException e
          && e.error() == OciError.BLOB_UNKNOWN) {
        flights.remove(digest, flight);
        return openIndexed(target, digest, forPeer);
      }
      return Future.failedFuture(err);
    });
    // A blob the cache cannot take is fetched for each client apart. The request goes out from
    // the caller's context, so that the response reaches the caller in the tick it arrives and
    // nothing of it can pass before the caller reads it.
    return SingleFlight.onCallerContext(source).recover(err -> err instanceof BlobFetch.Unstorable
        ? (peer == null ? target.upstream().getBlob(target.name(), digest) : peerClient.getBlob(peer, target, digest))
            .map(BlobSource.Uncached::new)
        : Future.failedFuture(err));
  }

  /**
   * Keeps a copy that is not kept (a blob another replica owns) for {@link #COPY_LINGER} after
   * its fill, joinable by the requests that come meanwhile: a rollout's clients come over a
   * minute or more, and without it every gap between them would fetch the blob from its owner
   * again. Then the copy goes with its last reader.
   */
  private void linger(Map<Digest, Flight> flights, Digest digest, Flight flight, BlobFill fill) {
    GrowingBlob hold = fill.open();
    if (hold == null) {
      flights.remove(digest, flight);
      return;
    }
    Runnable end = () -> {
      flights.remove(digest, flight);
      hold.release();
    };
    lingering.add(end);
    vertx.setTimer(COPY_LINGER.toMillis(), id -> {
      if (lingering.remove(end)) {
        end.run();
      }
    });
  }

  /** The fetch of {@code digest} under way, from upstream or else from its owner; null if none. */
  private Flight flight(Digest digest) {
    Flight flight = fills.get(digest);
    return flight != null ? flight : relays.get(digest);
  }

  /** A held cached blob, released once by whoever sends it. */
  private BlobSource.Cached cached(Digest digest, long size) {
    return new BlobSource.Cached(store.file(digest), size, once(() -> store.release(digest)));
  }

  private static Runnable once(Runnable release) {
    AtomicBoolean released = new AtomicBoolean();
    return () -> {
      if (released.compareAndSet(false, true)) {
        release.run();
      }
    };
  }

  /**
   * Fetches a blob into the cache unless it is there: completes once it is, or fails with the
   * fetch. A blob the cache cannot take is not fetched.
   */
  public Future<Void> warm(Target target, Digest digest) {
    return open(target, digest).compose(source -> {
      if (source instanceof BlobSource.Filling filling) {
        Flight flight = flight(digest);
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
    for (Runnable end : List.copyOf(lingering)) {
      if (lingering.remove(end)) {
        end.run();
      }
    }
    List<Future<Void>> done = new ArrayList<>();
    List<Flight> all = new ArrayList<>(fills.values());
    all.addAll(relays.values());
    for (Flight flight : all) {
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
