package io.registrymirror.api;

import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.registrymirror.config.TlsConfig;
import io.registrymirror.error.OciError;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
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
    return vertx.createHttpServer(options)
        .invalidRequestHandler(RegistryVerticle::invalid)
        .requestHandler(api.router())
        .listen()
        .onSuccess(s -> server = s);
  }

  /**
   * A request that is not valid HTTP never reaches the router: it gets Vert.x's statuses, but
   * with the OCI error JSON that every other refusal carries, and the connection is closed.
   */
  private static void invalid(HttpServerRequest request) {
    Throwable cause = request.decoderResult().cause();
    int status = cause instanceof TooLongHttpLineException ? 414
        : cause instanceof TooLongHttpHeaderException ? 431 : 400;
    Buffer body = OciError.UNSUPPORTED.exception("the request is not valid HTTP/1.1").body().toBuffer();
    HttpServerResponse response = request.response()
        .setStatusCode(status)
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
        .putHeader(HttpHeaders.CONTENT_LENGTH, Integer.toString(body.length()))
        .putHeader(HttpHeaders.CONNECTION, "close");
    (request.method() == HttpMethod.HEAD ? response.end() : response.end(body))
        .onComplete(v -> request.connection().close());
  }

  /** The port actually bound: differs from the configured one when that was 0. */
  public int actualPort() {
    return server.actualPort();
  }
}
