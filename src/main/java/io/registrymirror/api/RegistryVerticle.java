package io.registrymirror.api;

import io.registrymirror.config.TlsConfig;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;

/**
 * One event loop's HTTP server. Several instances listen on the same port; Vert.x spreads
 * connections across them, and they share every service.
 */
public final class RegistryVerticle extends VerticleBase {

  private static final int IDLE_TIMEOUT_SECONDS = 120;

  private final RegistryApi api;
  private final String host;
  private final int port;
  private final TlsConfig tls;
  private HttpServer server;

  /** @param tls the certificate and key to listen with, or null for plain http */
  public RegistryVerticle(RegistryApi api, String host, int port, TlsConfig tls) {
    this.api = api;
    this.host = host;
    this.port = port;
    this.tls = tls;
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
    if (tls != null) {
      options.setSsl(true).setKeyCertOptions(new PemKeyCertOptions()
          .setCertPath(tls.cert().toString())
          .setKeyPath(tls.key().toString()));
    }
    return vertx.createHttpServer(options).requestHandler(api.router()).listen()
        .onSuccess(s -> server = s);
  }

  /** The port actually bound: differs from the configured one when that was 0. */
  public int actualPort() {
    return server.actualPort();
  }
}
