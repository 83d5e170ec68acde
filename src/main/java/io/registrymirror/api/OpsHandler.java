package io.registrymirror.api;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.store.CacheLayout;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/** Endpoints for operators: liveness, readiness and Prometheus metrics. */
final class OpsHandler {

  private final Vertx vertx;
  private final PrometheusMeterRegistry prometheus;
  private final CacheLayout layout;

  OpsHandler(Vertx vertx, PrometheusMeterRegistry prometheus, CacheLayout layout) {
    this.vertx = vertx;
    this.prometheus = prometheus;
    this.layout = layout;
  }

  /** The process answers: nothing else is checked, so a busy upstream never restarts the pod. */
  void live(RoutingContext ctx) {
    ctx.json(new JsonObject().put("status", "ok"));
  }

  /** Ready when the cache can take new content: its directory is there and has room. */
  void ready(RoutingContext ctx) {
    vertx.fileSystem().fsProps(layout.tmp().toString()).onComplete(props -> {
      boolean ok = props.succeeded() && props.result().usableSpace() > 0;
      JsonObject body = new JsonObject().put("status", ok ? "ok" : "unavailable");
      if (props.succeeded()) {
        body.put("cacheFreeBytes", props.result().usableSpace());
      }
      ctx.response().setStatusCode(ok ? 200 : 503);
      ctx.json(body);
    });
  }

  void metrics(RoutingContext ctx) {
    vertx.executeBlocking(prometheus::scrape, false).onSuccess(text -> ctx.response()
        .putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .end(text)).onFailure(ctx::fail);
  }
}
