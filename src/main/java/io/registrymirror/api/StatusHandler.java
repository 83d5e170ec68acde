package io.registrymirror.api;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.registrymirror.cluster.Peers;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.metrics.MirrorMetrics.Source;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagMove;
import io.registrymirror.tags.TagRecord;
import io.registrymirror.tags.TagStore;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * {@code GET /api/v1/status}: what the status page shows, computed from the meters
 * {@code /metrics} exposes and the tag records {@code /api/v1/tags} lists. It is one endpoint
 * rather than the page parsing the Prometheus text and asking for every tag's history, so that a
 * refresh is one small request however many tags are tracked (up to {@code tags.maxTracked}),
 * and the meters are read by the names the code registers them under: renaming one breaks the
 * build, not the page. A meter that is not there reads as 0 (a counter) or null (a gauge).
 */
final class StatusHandler {

  static final String PATH = "/api/v1/status";

  /** Tags whose timeline is sent: those that moved (or were first seen) most recently. */
  static final int TAGS_SHOWN = 50;

  /** Moves sent per tag, most recent first; the tag API has the rest. */
  static final int MOVES_SHOWN = 10;

  /** How owners answer another replica: it follows no redirect, and none means unreachable. */
  private static final String[] OWNER_ANSWERS = {"2xx", "4xx", "5xx", "none"};

  /** The content the mirror caches: tag lists and referrers always go upstream. */
  private static final Endpoint[] CACHED_KINDS = {Endpoint.BLOB, Endpoint.MANIFEST};

  private static final Comparator<Map.Entry<TagKey, TagRecord>> BY_CHANGE =
      Comparator.comparingLong((Map.Entry<TagKey, TagRecord> e) -> e.getValue().changedAt())
          .thenComparing(e -> e.getKey().toString());

  private final Upstreams upstreams;
  private final TagStore tags;
  private final MeterRegistry registry;
  private final UpstreamHealth health;
  private final Peers peers;

  StatusHandler(Upstreams upstreams, TagStore tags, MeterRegistry registry, UpstreamHealth health, Peers peers) {
    this.upstreams = upstreams;
    this.tags = tags;
    this.registry = registry;
    this.health = health;
    this.peers = peers;
  }

  void handle(RoutingContext ctx) {
    JsonObject status = new JsonObject()
        .put("upstreams", upstreams())
        .put("requests", requests())
        .put("servedBytes", new JsonObject()
            .put(Source.CACHE.label(), counter(MirrorMetrics.SERVED, "source", Source.CACHE.label()))
            .put(Source.UPSTREAM.label(), counter(MirrorMetrics.SERVED, "source", Source.UPSTREAM.label())))
        .put("cache", cache())
        .put("fillsActive", gauge(MirrorMetrics.FILLS_ACTIVE))
        .put("cluster", cluster())
        .put("tags", tagTimeline());
    ctx.response()
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("X-Content-Type-Options", "nosniff");
    ctx.json(status);
  }

  /** The configured upstreams by name; never their credentials. */
  private JsonArray upstreams() {
    JsonArray out = new JsonArray();
    upstreams.all().stream().sorted(Comparator.comparing(UpstreamClient::name)).forEach(u -> {
      UpstreamHealth.Health h = health.health(u.name());
      out.add(new JsonObject()
          .put("name", u.name())
          // The configuration refuses a URL with user information, so this holds no secret.
          .put("url", u.config().url().toString())
          .put("default", u.config().isDefault())
          .put("health", h.word())
          .put("answers", h.window().answers())
          .put("failed", h.window().failed())
          .put("windowSeconds", h.over().toSeconds())
          .put("rateLimitRemaining", gauge(MirrorMetrics.UPSTREAM_RATELIMIT_REMAINING, "upstream", u.name())));
    });
    return out;
  }

  /**
   * Where this replica is reached, the replicas it sees serving (itself included), and what it
   * asked of their owners: requests by status class and bytes received. Null without a cluster.
   */
  private JsonObject cluster() {
    if (peers.self() == null) {
      return null;
    }
    JsonObject requests = new JsonObject();
    for (String status : OWNER_ANSWERS) {
      requests.put(status, counter(MirrorMetrics.PEER_REQUESTS, "status", status));
    }
    return new JsonObject()
        .put("self", peers.self())
        .put("replicas", new JsonArray(peers.replicas()))
        .put("keepCopies", peers.keepCopies())
        .put("requestsToOwners", requests)
        .put("receivedBytes", counter(MirrorMetrics.PEER_RECEIVED));
  }

  /**
   * Blob and manifest requests by result, and the share of those answered that came from the
   * cache: a stale answer is a cached one too.
   */
  private JsonObject requests() {
    JsonObject out = new JsonObject();
    for (Result result : Result.values()) {
      long n = 0;
      for (Endpoint kind : CACHED_KINDS) {
        n += counter(MirrorMetrics.REQUESTS, "kind", kind.label(), "result", result.label());
      }
      out.put(result.label(), n);
    }
    long fromCache = out.getLong(Result.HIT.label()) + out.getLong(Result.STALE.label());
    long answered = fromCache + out.getLong(Result.MISS.label());
    return out.put("hitRatio", answered == 0 ? null : (double) fromCache / answered);
  }

  private JsonObject cache() {
    JsonObject bytes = new JsonObject();
    JsonObject entries = new JsonObject();
    for (String kind : new String[] {"blob", "manifest"}) {
      bytes.put(kind, gauge(MirrorMetrics.CACHE_BYTES, "kind", kind));
      entries.put(kind, gauge(MirrorMetrics.CACHE_ENTRIES, "kind", kind));
    }
    return new JsonObject()
        .put("bytes", bytes)
        .put("entries", entries)
        .put("maxBytes", gauge(MirrorMetrics.CACHE_MAX))
        .put("diskFreeBytes", gauge(MirrorMetrics.CACHE_DISK_FREE))
        .put("diskSizeBytes", gauge(MirrorMetrics.CACHE_DISK_SIZE));
  }

  /**
   * The tags that moved most recently (a tag that never moved counts from when it was first
   * seen), newest first, each with its latest moves, newest first. A bounded heap picks them,
   * so a refresh costs one pass over the tracked tags and no sort of them all.
   */
  private JsonObject tagTimeline() {
    PriorityQueue<Map.Entry<TagKey, TagRecord>> newest = new PriorityQueue<>(BY_CHANGE);
    for (Map.Entry<TagKey, TagRecord> e : tags.all()) {
      newest.add(Map.entry(e.getKey(), e.getValue()));
      if (newest.size() > TAGS_SHOWN) {
        newest.poll();
      }
    }
    List<Map.Entry<TagKey, TagRecord>> shown = new ArrayList<>(newest);
    shown.sort(BY_CHANGE.reversed());
    JsonArray timeline = new JsonArray();
    for (Map.Entry<TagKey, TagRecord> e : shown) {
      List<TagMove> moves = e.getValue().moves();
      JsonArray history = new JsonArray();
      for (int i = moves.size() - 1; i >= Math.max(0, moves.size() - MOVES_SHOWN); i--) {
        history.add(moves.get(i).toJson());
      }
      timeline.add(e.getValue().toSummaryJson(e.getKey()).put("history", history));
    }
    JsonObject moves = new JsonObject();
    for (TagMove.Seen seen : TagMove.Seen.values()) {
      moves.put(seen.label(), counter(MirrorMetrics.TAG_MOVES, "seen", seen.label()));
    }
    return new JsonObject().put("tracked", tags.all().size()).put("moves", moves).put("timeline", timeline);
  }

  /** The sum of the counters of that name and tags, 0 when there is none. */
  private long counter(String name, String... labels) {
    double sum = 0;
    for (Counter c : registry.find(name).tags(Tags.of(labels)).counters()) {
      sum += c.count();
    }
    return Math.round(sum);
  }

  /** The sum of the gauges of that name and tags, null when there is none or none has a value. */
  private Long gauge(String name, String... labels) {
    Double sum = null;
    for (Gauge g : registry.find(name).tags(Tags.of(labels)).gauges()) {
      double value = g.value();
      if (!Double.isNaN(value)) {
        sum = (sum == null ? 0 : sum) + value;
      }
    }
    return sum == null ? null : Math.round(sum);
  }
}
