package io.registrymirror.testing;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import java.util.List;
import java.util.Queue;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A registry front of the kind registry.k8s.io runs: it stores nothing and answers every
 * {@code /v2/} request with a {@code 307} to the registry behind it, under a path prefix
 * ({@code /v2/pause/manifests/3.9} → {@code <target>/v2/k8s-artifacts-prod/images/pause/manifests/3.9?rid=…}),
 * manifests, tag lists and blobs alike. It hands out tokens from its own {@code /token}, as
 * registry.k8s.io does, but wants one on every request (registry.k8s.io only on {@code /v2/}), so
 * that a test sees that a client which got a token keeps it from the target.
 */
public final class RedirectingRegistry implements AutoCloseable {

  /** One request as received. */
  public record Request(String method, String path, String authorization) {}

  private final Vertx vertx = Vertx.vertx();
  private final String token = UUID.randomUUID().toString().replace("-", "");
  private final Queue<Request> requests = new ConcurrentLinkedQueue<>();
  private final String target;
  private HttpServer server;

  private RedirectingRegistry(String target) {
    this.target = target;
  }

  /** Starts on a free loopback port, redirecting to {@code target} (a URL with the path prefix). */
  public static RedirectingRegistry start(String target) {
    RedirectingRegistry r = new RedirectingRegistry(target);
    r.server = r.vertx.createHttpServer().requestHandler(r::handle).listen(0, "127.0.0.1").await();
    return r;
  }

  public String url() {
    return "http://127.0.0.1:" + server.actualPort();
  }

  /** The token it hands out; a request that carries it is redirected. */
  public String token() {
    return token;
  }

  public List<Request> requests() {
    return List.copyOf(requests);
  }

  private void handle(HttpServerRequest req) {
    String path = req.path();
    requests.add(new Request(req.method().name(), path, req.getHeader(HttpHeaders.AUTHORIZATION)));
    if (path.equals("/token")) {
      req.response().putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
          .end("{\"token\":\"" + token + "\",\"expires_in\":3600}");
    } else if (!path.startsWith("/v2/")) {
      req.response().setStatusCode(404).end();
    } else if (!("Bearer " + token).equals(req.getHeader(HttpHeaders.AUTHORIZATION))) {
      req.response().setStatusCode(401)
          .putHeader("WWW-Authenticate", "Bearer realm=\"" + url() + "/token\",service=\"redirecting\"")
          .end();
    } else if (path.equals("/v2/")) {
      req.response().end();
    } else {
      String rid = UUID.randomUUID().toString().replace("-", "");
      req.response().setStatusCode(307)
          .putHeader(HttpHeaders.LOCATION, target + path.substring("/v2".length()) + "?rid=" + rid)
          .end();
    }
  }

  @Override
  public void close() {
    vertx.close().await();
  }
}
