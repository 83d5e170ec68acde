package io.registrymirror.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.registrymirror.oci.Endpoint;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The mirror's own meters ({@link MeterRegistries} builds the registry they go to). Tags stay bounded: kinds, results and configured upstream names only,
 * never a repository, tag or digest.
 */
public final class MirrorMetrics {

  public static final String REQUESTS = "mirror.requests";
  public static final String UPSTREAM_REQUESTS = "mirror.upstream.requests";
  public static final String UPSTREAM_RECEIVED = "mirror.upstream.received";
  public static final String FILLS_ACTIVE = "mirror.fills.active";
  public static final String FILLS = "mirror.fills";
  public static final String FILL_SIZE = "mirror.fill.size";
  public static final String FILL_MEMORY = "mirror.fill.memory";
  public static final String BODY_MEMORY = "mirror.body.memory";
  public static final String SEND_MEMORY = "mirror.send.memory";
  public static final String CACHE_DISK_FREE = "mirror.cache.disk.free";
  public static final String CACHE_DISK_SIZE = "mirror.cache.disk.size";
  public static final String CACHE_WRITE_FAILURES = "mirror.cache.write.failures";
  public static final String CACHE_BYTES = "mirror.cache.bytes";
  public static final String CACHE_ENTRIES = "mirror.cache.entries";
  public static final String CACHE_MAX = "mirror.cache.max";
  public static final String CACHE_EVICTIONS = "mirror.cache.evictions";
  public static final String TAG_MOVES = "mirror.tag.moves";
  public static final String TAG_REFRESHES = "mirror.tag.refreshes";
  public static final String TAGS_TRACKED = "mirror.tags.tracked";
  public static final String CACHE_SCRUB_REMOVED = "mirror.cache.scrub.removed";
  public static final String CACHE_SCRUB_FILES = "mirror.cache.scrub.files";
  public static final String CACHE_SCRUB_CHECKED = "mirror.cache.scrub.checked";
  public static final String PREFETCH_JOBS = "mirror.prefetch.jobs";
  public static final String PREFETCH_FINISHED = "mirror.prefetch.finished";
  public static final String SERVED = "mirror.served";
  public static final String TAG_STALE_SERVES = "mirror.tag.stale.serves";
  public static final String CLUSTER_REPLICAS = "mirror.cluster.replicas";
  public static final String S3_REQUESTS = "mirror.s3.requests";
  public static final String PEER_REQUESTS = "mirror.peer.requests";
  public static final String PEER_RECEIVED = "mirror.peer.received";
  public static final String UPSTREAM_RATELIMIT_REMAINING = "mirror.upstream.ratelimit.remaining";

  /**
   * Buckets of the upstream latency histogram: from a loopback registry's milliseconds to a
   * slow token service's seconds, few enough that every upstream, method and status can have
   * its series from start-up.
   */
  private static final Duration[] LATENCY_BUCKETS = Stream.of(5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
      30000).map(Duration::ofMillis).toArray(Duration[]::new);

  /** The status classes of upstream answers, {@code none} when no answer came. */
  private static final String[] STATUS_CLASSES = {"2xx", "3xx", "4xx", "5xx", "none"};

  /** Where the bytes of a blob or manifest sent to a client came from. */
  public enum Source {
    CACHE, UPSTREAM;

    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * How it was answered: from the cache, by going upstream, from a stale cache, or not at all:
   * refused as the client's mistake (a 4xx: a bad name, an unknown manifest, no credentials),
   * or failed on the mirror's or upstream's side (a 5xx, or upstream's rate limit).
   */
  public enum Result {
    HIT, MISS, STALE, CLIENT_ERROR, ERROR;

    /** As it appears in metric labels and in the {@code X-Mirror-Cache} header. */
    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  private final MeterRegistry registry;
  /** Meters counted on every request, looked up once: a registry lookup per request costs. */
  private final Counter[][] requests = new Counter[Endpoint.values().length][Result.values().length];
  private final Map<Source, Counter> served = new EnumMap<>(Source.class);
  private final AtomicInteger activeFills = new AtomicInteger();
  private final DistributionSummary fillSize;
  private final Counter scrubFiles;
  private final Counter scrubBytes;

  public MirrorMetrics(MeterRegistry registry) {
    this.registry = registry;
    for (Endpoint kind : Endpoint.values()) {
      for (Result result : Result.values()) {
        requests[kind.ordinal()][result.ordinal()] = requestCounter(kind, result);
      }
    }
    Gauge.builder(FILLS_ACTIVE, activeFills, AtomicInteger::get)
        .description("Blob fetches from upstream into the cache in progress").register(registry);
    fillSize = DistributionSummary.builder(FILL_SIZE).baseUnit("bytes")
        .description("Size of blobs fetched from upstream into the cache").register(registry);
    for (String result : new String[] {"ok", "failed"}) {
      fillCounter(result);
    }
    for (String what : new String[] {"tag", "manifest", "blob"}) {
      cacheWriteFailures(what);
    }
    for (String kind : new String[] {"blob", "manifest", "stray"}) {
      scrubRemovedCounter(kind);
    }
    for (Source source : Source.values()) {
      served.put(source, servedCounter(source));
    }
    for (String kind : new String[] {"blob", "manifest"}) {
      evictionCounter(kind);
    }
    scrubFiles = Counter.builder(CACHE_SCRUB_FILES)
        .description("Cached files the background scrub has looked at").register(registry);
    scrubBytes = Counter.builder(CACHE_SCRUB_CHECKED).baseUnit("bytes")
        .description("Bytes of cached files the background scrub has hashed again").register(registry);
  }

  private Counter fillCounter(String result) {
    return Counter.builder(FILLS).description("Blob fetches from upstream into the cache, by how they ended")
        .tag("result", result).register(registry);
  }

  public void request(Endpoint kind, Result result) {
    requests[kind.ordinal()][result.ordinal()].increment();
  }

  private Counter requestCounter(Endpoint kind, Result result) {
    return Counter.builder(REQUESTS)
        .description("Registry API requests by kind and how they were answered")
        .tag("kind", kind.label())
        .tag("result", result.label())
        .register(registry);
  }

  /**
   * Every meter of one configured upstream, at 0 from start-up: a dashboard or an alert on a rate
   * of errors must see a series before the first error. {@code rateLimitRemaining} is the last
   * {@code ratelimit-remaining} upstream sent, negative while none came.
   */
  public void watchUpstream(String upstream, Supplier<Number> rateLimitRemaining) {
    for (String method : new String[] {"GET", "HEAD"}) {
      for (String status : STATUS_CLASSES) {
        upstreamTimer(upstream, method, status);
      }
    }
    upstreamReceivedCounter(upstream);
    for (String seen : new String[] {"pull", "refresh"}) {
      tagMoveCounter(upstream, seen);
    }
    for (String result : new String[] {"ok", "failed", "deferred"}) {
      tagRefreshCounter(upstream, result);
    }
    staleCounter(upstream);
    Gauge.builder(UPSTREAM_RATELIMIT_REMAINING, () -> {
      double remaining = rateLimitRemaining.get().doubleValue();
      return remaining < 0 ? Double.NaN : remaining;
    }).description("Requests left in the upstream's pull quota, from its last ratelimit-remaining header; "
        + "NaN until one came").tag("upstream", upstream).register(registry);
  }

  /** One upstream exchange; {@code status} 0 when no response came. */
  public void upstreamRequest(String upstream, String method, int status, long nanos) {
    upstreamTimer(upstream, method, status == 0 ? "none" : (status / 100) + "xx").record(Duration.ofNanos(nanos));
  }

  private Timer upstreamTimer(String upstream, String method, String status) {
    return Timer.builder(UPSTREAM_REQUESTS)
        .description("Requests sent to upstream registries, until response headers")
        .tag("upstream", upstream)
        .tag("method", method)
        .tag("status", status)
        .serviceLevelObjectives(LATENCY_BUCKETS)
        .register(registry);
  }

  /** One request to the object storage tier: a get that hit, missed or failed, a put that did or failed. */
  public void s3Request(String operation, String result) {
    Counter.builder(S3_REQUESTS)
        .description("Requests to the shared object storage tier, by operation and result")
        .tag("operation", operation)
        .tag("result", result)
        .register(registry).increment();
  }

  /** One blob request to the replica that owns the blob; {@code status} 0 when no response came. */
  public void peerRequest(int status) {
    Counter.builder(PEER_REQUESTS)
        .description("Blob requests sent to the replica that owns the blob, by status class")
        .tag("status", status == 0 ? "none" : (status / 100) + "xx")
        .register(registry).increment();
  }

  /** Blob bytes a fill took from the replica that owns the blob. */
  public void peerReceived(long bytes) {
    Counter.builder(PEER_RECEIVED).baseUnit("bytes")
        .description("Blob bytes received from the replicas that own them")
        .register(registry).increment(bytes);
  }

  public void upstreamReceived(String upstream, long bytes) {
    upstreamReceivedCounter(upstream).increment(bytes);
  }

  private Counter upstreamReceivedCounter(String upstream) {
    return Counter.builder(UPSTREAM_RECEIVED).baseUnit("bytes")
        .description("Blob bytes received from upstream registries")
        .tag("upstream", upstream).register(registry);
  }

  /** Bytes of a blob or manifest body sent to a client, by where they came from. */
  public void served(Source source, long bytes) {
    served.get(source).increment(bytes);
  }

  private Counter servedCounter(Source source) {
    return Counter.builder(SERVED).baseUnit("bytes")
        .description("Blob and manifest bytes sent to clients, from the cache or as they came from upstream")
        .tag("source", source.label()).register(registry);
  }

  /** The free space and size of the cache's file system, as last read. */
  public void watchCacheDisk(Supplier<Number> free, Supplier<Number> size) {
    Gauge.builder(CACHE_DISK_FREE, free).baseUnit("bytes")
        .description("Bytes left on the cache's file system for the mirror (usable space)")
        .register(registry);
    Gauge.builder(CACHE_DISK_SIZE, size).baseUnit("bytes")
        .description("Size of the cache's file system")
        .register(registry);
  }

  /** Watches the bytes and entries of one kind of cached content (blob, manifest). */
  public void watchCache(String kind, Supplier<Number> bytes, Supplier<Number> entries) {
    Gauge.builder(CACHE_BYTES, bytes).baseUnit("bytes").tag("kind", kind)
        .description("Bytes of verified content in the cache, by kind").register(registry);
    Gauge.builder(CACHE_ENTRIES, entries).tag("kind", kind)
        .description("Blobs or manifests in the cache").register(registry);
  }

  /** The configured bound on the cache, 0 for none. */
  public void watchCacheBound(long maxBytes) {
    Gauge.builder(CACHE_MAX, () -> maxBytes).baseUnit("bytes")
        .description("cache.maxSize: the bound on the cache's bytes, 0 for none").register(registry);
  }

  public void cacheEvicted(String kind) {
    evictionCounter(kind).increment();
  }

  private Counter evictionCounter(String kind) {
    return Counter.builder(CACHE_EVICTIONS).tag("kind", kind)
        .description("Blobs and manifests deleted to keep the cache within cache.maxSize")
        .register(registry);
  }

  /** Watches the bytes of blobs held in memory on their way to disk. */
  public void watchFillMemory(Supplier<Number> used) {
    Gauge.builder(FILL_MEMORY, used).baseUnit("bytes")
        .description("Blob bytes held in memory on their way to the cache, all fills together")
        .register(registry);
  }

  /** A cache write that failed: a {@code tag} record, a {@code manifest}, a {@code blob}. */
  public void cacheWriteFailed(String what) {
    cacheWriteFailures(what).increment();
  }

  private Counter cacheWriteFailures(String what) {
    return Counter.builder(CACHE_WRITE_FAILURES)
        .description("Writes to the cache that failed, e.g. on a full or read-only disk")
        .tag("what", what).register(registry);
  }

  /** Watches the memory budget for whole bodies (manifests, listings, tokens, webhook answers). */
  public void watchBodyMemory(Supplier<Number> used, long limit) {
    watchBudget(BODY_MEMORY, "Bytes of whole bodies held in memory (manifests, tag lists, referrers, tokens)",
        used, limit, "The most whole bodies may hold; beyond it requests wait briefly, then get 503");
  }

  /** Watches the memory budget for blob chunks on their way to clients' sockets. */
  public void watchSendMemory(Supplier<Number> used, long limit) {
    watchBudget(SEND_MEMORY, "Bytes of blob chunks read for clients and not yet taken by their sockets",
        used, limit, "The most chunks on their way to clients may hold; beyond it a chunk waits its turn");
  }

  private void watchBudget(String name, String usedMeans, Supplier<Number> used, long limit, String limitMeans) {
    Gauge.builder(name, used).baseUnit("bytes").description(usedMeans).register(registry);
    Gauge.builder(name + ".limit", () -> limit).baseUnit("bytes").description(limitMeans).register(registry);
  }

  /** A tag seen pointing elsewhere, by a pull or by the refresher. */
  public void tagMoved(String upstream, String seen) {
    tagMoveCounter(upstream, seen).increment();
  }

  private Counter tagMoveCounter(String upstream, String seen) {
    return Counter.builder(TAG_MOVES).description("Tags seen to point at another manifest than before")
        .tag("upstream", upstream).tag("seen", seen).register(registry);
  }

  /** One background revalidation: {@code ok}, {@code failed}, or {@code deferred} by a budget or back-off. */
  public void tagRefreshed(String upstream, String result) {
    tagRefreshCounter(upstream, result).increment();
  }

  private Counter tagRefreshCounter(String upstream, String result) {
    return Counter.builder(TAG_REFRESHES).description("Background revalidations of tracked tags")
        .tag("upstream", upstream).tag("result", result).register(registry);
  }

  /** A tag answered from its last known resolution because upstream could not be asked. */
  public void staleServed(String upstream) {
    staleCounter(upstream).increment();
  }

  private Counter staleCounter(String upstream) {
    return Counter.builder(TAG_STALE_SERVES)
        .description("Tags answered from their last known manifest because upstream failed or was unreachable")
        .tag("upstream", upstream).register(registry);
  }

  public void watchTrackedTags(Supplier<Number> count) {
    Gauge.builder(TAGS_TRACKED, count).description("Tags the mirror tracks and refreshes").register(registry);
  }

  /** The replicas of the cluster that serve blobs, this one included once it does. */
  public void watchReplicas(Supplier<Number> count) {
    Gauge.builder(CLUSTER_REPLICAS, count).description("Replicas of the cluster that serve blobs, as this one sees them")
        .register(registry);
  }

  public void fillStarted() {
    activeFills.incrementAndGet();
  }

  public void fillEnded(boolean ok, long bytes) {
    activeFills.decrementAndGet();
    fillCounter(ok ? "ok" : "failed").increment();
    if (ok) {
      fillSize.record(bytes);
    }
  }

  /** Files and bytes the background scrub checked since it last said so. */
  public void scrubChecked(long files, long bytes) {
    scrubFiles.increment(files);
    scrubBytes.increment(bytes);
  }

  /** A file the background scrub removed: a {@code blob}, a {@code manifest} or a {@code stray} file. */
  public void scrubRemoved(String kind) {
    scrubRemovedCounter(kind).increment();
  }

  private Counter scrubRemovedCounter(String kind) {
    return Counter.builder(CACHE_SCRUB_REMOVED)
        .description("Cached files the background scrub removed: content that no longer matches its digest, "
            + "or files that are no digest's path")
        .tag("kind", kind).register(registry);
  }

  /** The prefetch jobs waiting for their turn and those running. */
  public void watchPrefetchJobs(Supplier<Number> queued, Supplier<Number> running) {
    Gauge.builder(PREFETCH_JOBS, queued).description("Prefetch jobs by state: waiting, or pulling an image")
        .tag("state", "queued").register(registry);
    Gauge.builder(PREFETCH_JOBS, running).description("Prefetch jobs by state: waiting, or pulling an image")
        .tag("state", "running").register(registry);
    for (String state : new String[] {"done", "failed"}) {
      prefetchCounter(state);
    }
  }

  /** A prefetch job that ended: {@code done} or {@code failed}. */
  public void prefetchFinished(String state) {
    prefetchCounter(state).increment();
  }

  private Counter prefetchCounter(String state) {
    return Counter.builder(PREFETCH_FINISHED).description("Prefetch jobs that ended, by how")
        .tag("state", state).register(registry);
  }
}
