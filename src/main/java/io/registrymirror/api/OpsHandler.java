package io.registrymirror.api;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.proxy.CacheHealth;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.file.FileSystemProps;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/** Endpoints for operators: liveness, readiness and Prometheus metrics. */
final class OpsHandler {

  private final Vertx vertx;
  private final PrometheusMeterRegistry prometheus;
  private final CacheHealth cache;

  OpsHandler(Vertx vertx, PrometheusMeterRegistry prometheus, CacheHealth cache) {
    this.vertx = vertx;
    this.prometheus = prometheus;
    this.cache = cache;
  }

  /** The process answers: nothing else is checked, so a busy upstream never restarts the pod. */
  void live(RoutingContext ctx) {
    ctx.json(new JsonObject().put("status", "ok"));
  }

  /**
   * Ready once the cache's index is read (a large cache takes a few seconds) and a file could be
   * written in it, and from then on while the mirror serves, which it does with a cache that
   * turns full or read-only too (blobs and manifests then go past it) and with every upstream
   * down (it serves what it has): taking it out of rotation would turn slower pulls into failed
   * ones. A cache not writable since start-up (a read-only volume, the wrong owner) keeps it out
   * of rotation, and says why, until it is. The body says how the cache is doing, its room and
   * whether a file could be written in it lately, both read off the event loop.
   */
  void ready(RoutingContext ctx) {
    if (!cache.indexed()) {
      ctx.response().setStatusCode(503);
      ctx.json(new JsonObject().put("status", "loading").put("error", "the cache index is being read"));
      return;
    }
    Future<FileSystemProps> props = cache.space();
    Future<Void> writable = cache.writable();
    Future.join(props, writable).onComplete(checked -> {
      boolean ready = cache.everWritable();
      JsonObject body = new JsonObject().put("status", ready ? "ok" : "unwritable")
          .put("cacheWritable", writable.succeeded());
      if (props.succeeded()) {
        body.put("cacheFreeBytes", props.result().usableSpace());
      }
      if (writable.failed()) {
        body.put("error", writable.cause().toString());
      }
      ctx.response().setStatusCode(ready ? 200 : 503);
      ctx.json(body);
    });
  }

  void metrics(RoutingContext ctx) {
    vertx.executeBlocking(prometheus::scrape, false).onSuccess(text -> ctx.response()
        .putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .end(text)).onFailure(ctx::fail);
  }
}
