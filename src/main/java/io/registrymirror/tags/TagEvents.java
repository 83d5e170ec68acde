package io.registrymirror.tags;

import io.registrymirror.config.TagsConfig;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.upstream.UpstreamResponses;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.time.Duration;
import java.util.List;

/**
 * Reports each tag move: one structured log event, a metric, and a JSON POST to every
 * configured webhook. Deliveries are retried a few times with growing delays, and run apart
 * from the request that saw the move: a slow or failing receiver never holds a pull, and its
 * answer is read and thrown away and must end within a timeout, so that no receiver can make
 * the mirror hold its body or a connection. Where a rule says so, the new image is fetched into
 * the cache, also apart from any pull.
 */
public final class TagEvents {

  private static final EventLog LOG = EventLog.of(TagEvents.class);
  private static final long[] RETRY_DELAYS_MS = {1_000, 5_000, 25_000};
  private static final long TIMEOUT_MS = 10_000;

  private final Vertx vertx;
  private final HttpClient client;
  private final TagsConfig config;
  private final MirrorMetrics metrics;
  private final TagWarmer warmer;

  public TagEvents(Vertx vertx, HttpClient client, TagsConfig config, MirrorMetrics metrics, TagWarmer warmer) {
    this.vertx = vertx;
    this.client = client;
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
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.POST)
        .setAbsoluteURI(url.toString())
        .setFollowRedirects(false)
        .setConnectTimeout(TIMEOUT_MS)
        .setIdleTimeout(TIMEOUT_MS)
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
    client.request(options)
        .compose(req -> req.send(event.toBuffer()))
        .compose(resp -> {
          UpstreamResponses.endWithin(vertx, resp, Duration.ofMillis(TIMEOUT_MS), "webhook " + url);
          resp.handler(ignored -> { });
          return resp.end().compose(v -> resp.statusCode() / 100 == 2
              ? Future.succeededFuture()
              : Future.failedFuture("answered " + resp.statusCode()));
        })
        .onFailure(err -> {
          if (attempt < RETRY_DELAYS_MS.length) {
            vertx.setTimer(RETRY_DELAYS_MS[attempt], id -> deliver(url, event, attempt + 1));
          } else {
            LOG.warn("tag.webhook.failed", "url", url, "tag", event.getString("tag"), "error", err.getMessage());
          }
        });
  }
}
