package io.registrymirror.api;

import io.registrymirror.log.EventLog;
import io.registrymirror.log.LogSetup;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The access log: one line per request on the {@code access} logger once its answer has ended,
 * or its connection closed first: method, path, status, body bytes sent, milliseconds, and, when
 * known, the cache's answer ({@code hit}, {@code miss}, {@code stale}) and the upstream it went to.
 *
 * <p>No header is logged, {@code Authorization} least of all, and of the query only {@code ns},
 * which names a registry: a token some client puts in a query never reaches the log.
 */
final class AccessLog implements Handler<RoutingContext> {

  /** The routing context's key for the name of the upstream a request was routed to. */
  static final String UPSTREAM = "access.upstream";

  private static final EventLog LOG = EventLog.named(LogSetup.ACCESS);

  @Override
  public void handle(RoutingContext ctx) {
    if (LOG.infoEnabled()) {
      long start = System.nanoTime();
      ctx.addEndHandler(ended -> log(ctx, ended.succeeded(), start));
    }
    ctx.next();
  }

  private static void log(RoutingContext ctx, boolean complete, long start) {
    HttpServerRequest request = ctx.request();
    HttpServerResponse response = ctx.response();
    List<Object> fields = new ArrayList<>(20);
    fields.addAll(List.of("method", request.method().name(), "path", target(request),
        "status", response.getStatusCode(), "bytes", response.bytesWritten(),
        "ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)));
    if (!complete) {
      // The connection closed before the answer's end: a client that hung up, or a shutdown's grace ran out.
      fields.addAll(List.of("complete", false));
    }
    String cache = response.headers().get(Headers.CACHE_STATUS);
    if (cache != null) {
      fields.addAll(List.of("cache", cache));
    }
    String upstream = ctx.get(UPSTREAM);
    if (upstream != null) {
      fields.addAll(List.of("upstream", upstream));
    }
    SocketAddress client = request.remoteAddress();
    if (client != null && client.hostAddress() != null) {
      fields.addAll(List.of("client", client.hostAddress()));
    }
    LOG.info("request", fields.toArray());
  }

  /** The path as sent, with containerd's {@code ns} parameter but nothing else of the query. */
  static String target(HttpServerRequest request) {
    String query = request.query();
    if (query != null) {
      for (String param : query.split("&")) {
        if (param.startsWith("ns=")) {
          return request.path() + "?" + param;
        }
      }
    }
    return request.path();
  }
}
