package io.registrymirror.api;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;

/**
 * One event loop's HTTP server. Several instances listen on the same port; Vert.x spreads
 * connections across them, and they share every service.
 */
public final class RegistryVerticle extends VerticleBase {

  private static final int IDLE_TIMEOUT_SECONDS = 120;

  private final RegistryApi api;
  private final String host;
  private final int port;
  private HttpServer server;

  public RegistryVerticle(RegistryApi api, String host, int port) {
    this.api = api;
    this.host = host;
    this.port = port;
  }

  @Override
  public Future<?> start() {
    HttpServerOptions options = new HttpServerOptions()
        .setHost(host)
        .setPort(port)
        // Blobs and manifests are digested byte for byte: compressing them on the wire would
        // only cost CPU on content that is compressed already.
        .setCompressionSupported(false)
        .setDecompressionSupported(false)
        // A client that neither reads nor sends for this long holds a connection and, during
        // a fill, a file handle for nothing.
        .setIdleTimeout(IDLE_TIMEOUT_SECONDS);
    return vertx.createHttpServer(options).requestHandler(api.router()).listen()
        .onSuccess(s -> server = s);
  }

  /** The port actually bound: differs from the configured one when that was 0. */
  public int actualPort() {
    return server.actualPort();
  }
}
