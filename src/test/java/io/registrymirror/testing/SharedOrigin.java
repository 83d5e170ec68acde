package io.registrymirror.testing;

import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.net.URI;

/**
 * A registry and its token service on one origin, as ghcr.io, quay.io or Harbor serve them:
 * {@code /token} goes to the token server, everything else to the registry side (a per-test
 * {@link Forwarder}, set with {@link #registry(int)}). The mirror sends its credentials only to a
 * realm on the upstream's own scheme, host and port, so a test of credentials needs one.
 */
public final class SharedOrigin implements AutoCloseable {

  private static final String LOOPBACK = "127.0.0.1";

  private final Vertx vertx = Vertx.vertx();
  private final HttpClient client = vertx.createHttpClient();
  private final int tokenPort;
  private volatile int registryPort;
  private HttpServer server;

  private SharedOrigin(int tokenPort) {
    this.tokenPort = tokenPort;
  }

  /** Starts on a free loopback port, sending {@code /token} to the token server at {@code realm}. */
  public static SharedOrigin start(String realm) {
    SharedOrigin origin = new SharedOrigin(URI.create(realm).getPort());
    origin.server = origin.vertx.createHttpServer().requestHandler(origin::handle);
    origin.server.listen(0, LOOPBACK).await();
    return origin;
  }

  /** Where requests other than {@code /token} go from now on. */
  public void registry(int port) {
    registryPort = port;
  }

  public String url() {
    return "http://" + LOOPBACK + ":" + server.actualPort();
  }

  public String realm() {
    return url() + "/token";
  }

  /** The token settings under which a registry sends its clients to this origin for tokens. */
  public ReferenceRegistry.TokenAuth auth(TokenServer tokens) {
    ReferenceRegistry.TokenAuth direct = tokens.auth();
    return new ReferenceRegistry.TokenAuth(realm(), direct.service(), direct.issuer(), direct.rootCertBundle());
  }

  private void handle(HttpServerRequest request) {
    request.pause();
    int port = request.path().equals("/token") ? tokenPort : registryPort;
    RequestOptions options = new RequestOptions().setMethod(request.method()).setHost(LOOPBACK)
        .setPort(port).setURI(request.uri());
    options.setHeaders(MultiMap.caseInsensitiveMultiMap().addAll(request.headers()));
    client.request(options)
        .compose(out -> out.send(request))
        .onSuccess(in -> {
          request.response().setStatusCode(in.statusCode()).headers().addAll(in.headers());
          in.pipeTo(request.response());
        })
        .onFailure(e -> request.response().setStatusCode(502).end());
  }

  @Override
  public void close() {
    vertx.close().await();
  }
}
