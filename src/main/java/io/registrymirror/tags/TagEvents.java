package io.registrymirror.tags;

import io.registrymirror.config.TagsConfig;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.codec.BodyCodec;
import java.net.URI;
import java.util.List;

/**
 * Reports each tag move: one structured log event, a metric, and a JSON POST to every
 * configured webhook. Deliveries are retried a few times with growing delays, and run apart
 * from the request that saw the move: a slow or failing receiver never holds a pull, and its
 * answer is read and thrown away, so that no receiver can make the mirror hold its body. Where a
 * rule says so, the new image is fetched into the cache, also apart from any pull.
 */
public final class TagEvents {

  private static final EventLog LOG = EventLog.of(TagEvents.class);
  private static final long[] RETRY_DELAYS_MS = {1_000, 5_000, 25_000};
  private static final long TIMEOUT_MS = 10_000;

  private final Vertx vertx;
  private final WebClient web;
  private final TagsConfig config;
  private final MirrorMetrics metrics;
  private final TagWarmer warmer;

  public TagEvents(Vertx vertx, WebClient web, TagsConfig config, MirrorMetrics metrics, TagWarmer warmer) {
    this.vertx = vertx;
    this.web = web;
    this.config = config;
    this.metrics = metrics;
    this.warmer = warmer;
  }

  void moved(TagKey key, TagMove move) {
    LOG.info("tag.moved", "upstream", key.upstream(), "repository", key.name(), "tag", key.tag(),
        "from", move.from(), "to", move.to(), "seen", move.seen().label());
    metrics.tagMoved(key.upstream(), move.seen().label());
    JsonObject event = new JsonObject()
        .put("event", "tag.moved")
        .put("upstream", key.upstream())
        .put("repository", key.name().value())
        .put("tag", key.tag())
        .mergeIn(move.toJson());
    for (URI url : config.webhooks()) {
      deliver(url, event, 0);
    }
    List<String> platforms = config.warm(key.name().value(), key.tag());
    if (!platforms.isEmpty()) {
      warmer.warm(key, move.to(), platforms);
    }
  }

  /** A tag answered from its last known resolution: upstream failed or refused to be asked. */
  void servedStale(TagKey key, TagRecord known, Throwable cause) {
    LOG.warn("tag.stale", "tag", key, "digest", known.digest(), "error", cause.getMessage());
    metrics.staleServed(key.upstream());
  }

  private void deliver(URI url, JsonObject event, int attempt) {
    web.postAbs(url.toString())
        .as(BodyCodec.none())
        .followRedirects(false)
        .connectTimeout(TIMEOUT_MS)
        .idleTimeout(TIMEOUT_MS)
        .sendJsonObject(event)
        .compose(resp -> resp.statusCode() / 100 == 2
            ? Future.succeededFuture()
            : Future.failedFuture("answered " + resp.statusCode()))
        .onFailure(err -> {
          if (attempt < RETRY_DELAYS_MS.length) {
            vertx.setTimer(RETRY_DELAYS_MS[attempt], id -> deliver(url, event, attempt + 1));
          } else {
            LOG.warn("tag.webhook.failed", "url", url, "tag", event.getString("tag"), "error", err.getMessage());
          }
        });
  }
}
