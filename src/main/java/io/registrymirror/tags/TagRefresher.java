package io.registrymirror.tags;

import io.registrymirror.config.TagsConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.upstream.NumericHeader;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Revalidates tracked tags in the background before their TTL runs out, so that pulls are
 * answered from the cache and moves are seen even when nobody pulls. Only HEAD requests (free
 * against Docker Hub's pull quota), a bounded number at once, each after a random delay so that
 * tags resolved together are not asked about together, and within each upstream's budget of
 * requests per minute. An upstream that answers 429 is left alone for its Retry-After; one that
 * fails is left alone for a growing while; one whose {@code ratelimit-remaining} runs low is
 * left its last requests for real pulls. Tags nobody pulled for {@code forgetAfter} are dropped.
 *
 * <p>All its state lives on one context.
 */
public final class TagRefresher {

  private static final EventLog LOG = EventLog.of(TagRefresher.class);
  private static final long FIRST_BACKOFF_MS = 30_000;
  private static final long MAX_BACKOFF_MS = 30 * 60_000;
  private static final long DEFAULT_RETRY_AFTER_MS = 60_000;

  /** Per upstream: its token bucket and how long it is left alone. */
  private static final class UpstreamState {
    double tokens;
    long refilledAt;
    long blockedUntil;
    long backoff = FIRST_BACKOFF_MS;
  }

  private final Vertx vertx;
  private final Context context;
  private final TagStore tags;
  private final TagResolver resolver;
  private final Upstreams upstreams;
  private final TagsConfig config;
  private final MirrorMetrics metrics;
  private final Queue<TagKey> queue = new ArrayDeque<>();
  private final Set<TagKey> pending = new HashSet<>();
  private final Map<String, UpstreamState> states = new HashMap<>();
  private int running;
  private long timer = -1;

  public TagRefresher(Vertx vertx, TagStore tags, TagResolver resolver,
      Upstreams upstreams, TagsConfig config, MirrorMetrics metrics) {
    this.vertx = vertx;
    this.context = vertx.getOrCreateContext();
    this.tags = tags;
    this.resolver = resolver;
    this.upstreams = upstreams;
    this.config = config;
    this.metrics = metrics;
  }

  public void start() {
    long interval = config.refreshInterval().toMillis();
    if (interval > 0) {
      context.runOnContext(v -> timer = vertx.setPeriodic(interval, id -> tick()));
    }
  }

  public void stop() {
    context.runOnContext(v -> vertx.cancelTimer(timer));
  }

  /** Queues every tracked tag that would go stale before the next look. */
  void tick() {
    long now = System.currentTimeMillis();
    long interval = config.refreshInterval().toMillis();
    for (Map.Entry<TagKey, TagRecord> e : tags.all()) {
      TagKey key = e.getKey();
      TagRecord r = e.getValue();
      UpstreamClient upstream = upstreams.byName(key.upstream());
      if (upstream == null || pending.contains(key)) {
        continue;
      }
      if (now - r.pulledAt() > config.forgetAfter().toMillis()) {
        tags.forget(key, r);
        LOG.info("tag.forgotten", "tag", key, "lastPulled", r.pulledAt());
        continue;
      }
      // In a cluster, the tag's owner keeps it fresh for all; the others record what it finds.
      if (!resolver.owns(key)) {
        continue;
      }
      long ttl = resolver.ttlMillis(upstream, key);
      // A TTL of zero revalidates on every pull: there is nothing to keep fresh.
      if (ttl > 0 && now >= r.checkedAt() + ttl - interval) {
        pending.add(key);
        queue.add(key);
      }
    }
    pump();
  }

  private void pump() {
    while (running < config.refreshConcurrency() && !queue.isEmpty()) {
      TagKey key = queue.poll();
      TagRecord record = tags.cached(key);
      UpstreamClient upstream = upstreams.byName(key.upstream());
      if (record == null || upstream == null || !admit(upstream)) {
        // Still due at the next look, which decides again.
        pending.remove(key);
        continue;
      }
      running++;
      long jitter = ThreadLocalRandom.current().nextLong(1, Math.max(2, config.refreshInterval().toMillis() / 4));
      vertx.setTimer(jitter, id -> resolver.refresh(upstream, key, record)
          .onComplete(result -> context.runOnContext(v -> {
            running--;
            pending.remove(key);
            done(upstream, key, result.failed() ? result.cause() : null);
            pump();
          })));
    }
  }

  /** Whether the upstream may get one more revalidation now: not left alone, within budget. */
  private boolean admit(UpstreamClient upstream) {
    long now = System.currentTimeMillis();
    UpstreamState s = states.computeIfAbsent(upstream.name(), n -> {
      UpstreamState fresh = new UpstreamState();
      fresh.tokens = upstream.config().refreshBudget();
      fresh.refilledAt = now;
      return fresh;
    });
    double perMs = upstream.config().refreshBudget() / 60_000.0;
    s.tokens = Math.min(upstream.config().refreshBudget(), s.tokens + (now - s.refilledAt) * perMs);
    s.refilledAt = now;
    int remaining = upstream.rateLimitRemaining();
    int limit = upstream.rateLimitLimit();
    boolean quotaLow = remaining >= 0 && remaining <= Math.max(1, limit / 10);
    if (now < s.blockedUntil || s.tokens < 1 || quotaLow) {
      metrics.tagRefreshed(upstream.name(), "deferred");
      return false;
    }
    s.tokens -= 1;
    return true;
  }

  private void done(UpstreamClient upstream, TagKey key, Throwable failure) {
    UpstreamState s = states.get(upstream.name());
    if (failure == null) {
      s.backoff = FIRST_BACKOFF_MS;
      metrics.tagRefreshed(upstream.name(), "ok");
      return;
    }
    metrics.tagRefreshed(upstream.name(), "failed");
    long now = System.currentTimeMillis();
    if (failure instanceof RegistryException e && e.error() == OciError.TOOMANYREQUESTS) {
      s.blockedUntil = now + retryAfter(e.headers().get("Retry-After"));
    } else if (failure instanceof RegistryException e && e.error() == OciError.UNAVAILABLE) {
      s.blockedUntil = now + s.backoff;
      s.backoff = Math.min(MAX_BACKOFF_MS, s.backoff * 2);
    }
    LOG.warn("tag.refresh.failed", "tag", key, "error", failure.getMessage(),
        "pausedMs", Math.max(0, s.blockedUntil - now));
  }

  private static long retryAfter(String header) {
    OptionalLong seconds = NumericHeader.parse(header);
    return seconds.isPresent() ? Math.max(1, seconds.getAsLong()) * 1000 : DEFAULT_RETRY_AFTER_MS;
  }
}
