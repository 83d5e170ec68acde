package io.registrymirror.api;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.ReferenceCountUtil;
import io.registrymirror.config.TlsConfig;
import io.registrymirror.error.OciError;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.ext.web.Router;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * One event loop's HTTP server. Several instances listen on the same port; Vert.x spreads
 * connections across them, and they share every service and the {@link ConnectionGuard}.
 *
 * <p>Before a request reaches the router, its framing is checked here: the mirror is read-only,
 * so a request with a body (but a POST to the admin API with a small {@code Content-Length}), or
 * with framing a proxy in front could read differently (both {@code Content-Length} and
 * {@code Transfer-Encoding}), is refused and its connection closed.
 */
public final class RegistryVerticle extends VerticleBase {

  private static final int IDLE_TIMEOUT_SECONDS = 120;
  /** The first byte of a TLS record carrying a handshake: a client speaking https to plain http. */
  private static final byte TLS_HANDSHAKE = 0x16;

  private final RegistryApi api;
  private final ConnectionGuard guard;
  private final String host;
  private final int port;
  private final TlsConfig tls;
  /** This event loop's connections, and since when each has waited for a request. */
  private final Map<HttpConnection, Waiting> connections = new HashMap<>();
  private HttpServer server;
  private long sweeper;

  /**
   * A connection's state for the header deadline (its latest request, and when it was last
   * busy), and whether the request being read began with HEAD: when its request line is too long
   * to parse, only its first bytes tell, and a HEAD's refusal must have no body. (A request that
   * arrives in the same read as the end of the one before it is taken for a GET here.)
   */
  private static final class Waiting {
    HttpServerRequest latest;
    long idleSince = System.nanoTime();
    boolean atRequestStart = true;
    boolean head;

    boolean busy() {
      return latest != null && !latest.response().ended() && !latest.response().closed();
    }
  }

  /** @param tls the certificate and key to listen with, or null for plain http */
  public RegistryVerticle(RegistryApi api, ConnectionGuard guard, String host, int port, TlsConfig tls) {
    this.api = api;
    this.guard = guard;
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
        // Container clients speak HTTP/1.1 to a plain-http registry. With h2c on, a connection
        // only becomes one Vert.x knows of once its first bytes arrive, so connections that
        // send nothing would escape the connection caps and the header deadline.
        .setHttp2ClearTextEnabled(false)
        // A client that neither reads nor sends for this long holds a connection and, during
        // a fill, a file handle for nothing.
        .setIdleTimeout(IDLE_TIMEOUT_SECONDS);
    if (tls != null) {
      options.setSsl(true).setKeyCertOptions(new PemKeyCertOptions()
          .setCertPath(tls.cert().toString())
          .setKeyPath(tls.key().toString()));
    }
    Router router = api.router();
    long timeoutMillis = guard.headerTimeout().toMillis();
    sweeper = vertx.setPeriodic(Math.max(50, Math.min(1_000, timeoutMillis / 4)), t -> sweep(timeoutMillis));
    return vertx.createHttpServer(options)
        .connectionHandler(this::connected)
        .invalidRequestHandler(request -> invalid(request, watch(request)))
        .requestHandler(request -> {
          watch(request);
          if (request.version() == HttpVersion.HTTP_1_1 && request.getHeader(HttpHeaders.HOST) == null) {
            refuse(request, false, 400, "an HTTP/1.1 request needs a Host header");
          } else {
            router.handle(request);
          }
        })
        .listen()
        .onSuccess(s -> server = s);
  }

  /**
   * Takes no more connections and lets the answers in progress finish for up to {@code grace},
   * closing each connection once its answer has ended (idle ones at once); past the grace, the
   * connections left are closed, cutting their answers.
   */
  public Future<Void> shutdown(Duration grace) {
    return server.shutdown(grace.toMillis(), TimeUnit.MILLISECONDS);
  }

  @Override
  public Future<?> stop() {
    vertx.cancelTimer(sweeper);
    return Future.succeededFuture();
  }

  /** A new connection: counted against the caps, or closed at once when it is one too many. */
  private void connected(HttpConnection connection) {
    String address = address(connection.remoteAddress());
    if (!guard.admit(address)) {
      connection.close();
      return;
    }
    Waiting waiting = new Waiting();
    connections.put(connection, waiting);
    connection.closeHandler(v -> {
      connections.remove(connection);
      guard.release(address);
    });
    // Vert.x has no hooks for these: they sit in the connection's Netty pipeline, around the
    // HTTP decoder, and see each request's first bytes and its decoded head before Vert.x does.
    if (connection instanceof ConnectionBase netty && netty.channel().pipeline().get("httpDecoder") != null) {
      ChannelPipeline pipeline = netty.channel().pipeline();
      pipeline.addBefore("httpDecoder", "requestStart", new RequestStart(waiting, tls == null));
      pipeline.addBefore("handler", "framing", new Framing(waiting));
    }
  }

  private Waiting watch(HttpServerRequest request) {
    Waiting waiting = connections.get(request.connection());
    if (waiting != null) {
      waiting.latest = request;
    }
    return waiting;
  }

  /**
   * Closes the connections that have waited longer than the header deadline for a request's
   * headers: since they opened, or since their previous answer ended (to within one sweep).
   */
  private void sweep(long timeoutMillis) {
    long now = System.nanoTime();
    List<HttpConnection> late = new ArrayList<>();
    connections.forEach((connection, waiting) -> {
      if (waiting.busy()) {
        waiting.idleSince = now;
      } else if ((now - waiting.idleSince) / 1_000_000 >= timeoutMillis) {
        late.add(connection);
      }
    });
    // Outside the iteration: closing may remove them from the map.
    late.forEach(connection -> {
      guard.closedLate();
      connection.close();
    });
    guard.report();
  }

  /**
   * A request that is not valid HTTP never reaches the router: it gets Vert.x's statuses, but
   * with the OCI error JSON that every other refusal carries, and the connection is closed.
   */
  private static void invalid(HttpServerRequest request, Waiting waiting) {
    Throwable cause = request.decoderResult().cause();
    int status = cause instanceof TooLongHttpLineException ? 414
        : cause instanceof TooLongHttpHeaderException ? 431 : 400;
    refuse(request, waiting != null && waiting.head, status, "the request is not valid HTTP/1.1");
  }

  /** The OCI error JSON (no body on a HEAD), then the connection closes: what follows is not trusted. */
  private static void refuse(HttpServerRequest request, boolean head, int status, String detail) {
    HttpServerResponse response = request.response().setStatusCode(status)
        .putHeader(Headers.API_VERSION, Headers.API_VERSION_VALUE)
        .putHeader(HttpHeaders.CONNECTION, "close");
    ErrorHandler.send(response, OciError.UNSUPPORTED.exception(detail), head || request.method() == HttpMethod.HEAD)
        .onComplete(v -> request.connection().close());
  }

  private static String address(SocketAddress remote) {
    return remote == null ? "" : Objects.requireNonNullElse(remote.hostAddress(), String.valueOf(remote.host()));
  }

  /**
   * Before the HTTP decoder: notes whether each request begins with HEAD, and closes a plain-http
   * connection whose first bytes are a TLS handshake at once rather than at the header deadline:
   * that client will not speak HTTP on it.
   */
  private static final class RequestStart extends ChannelInboundHandlerAdapter {
    private final Waiting waiting;
    private boolean first;

    RequestStart(Waiting waiting, boolean plain) {
      this.waiting = waiting;
      this.first = plain;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof ByteBuf bytes && bytes.isReadable()) {
        if (first && bytes.getByte(bytes.readerIndex()) == TLS_HANDSHAKE) {
          ReferenceCountUtil.release(msg);
          ctx.close();
          return;
        }
        first = false;
        if (waiting.atRequestStart) {
          // Empty lines may precede a request line.
          int start = bytes.forEachByte(b -> b == '\r' || b == '\n');
          if (start >= 0) {
            waiting.atRequestStart = false;
            waiting.head = bytes.toString(start, Math.min(5, bytes.writerIndex() - start), StandardCharsets.US_ASCII)
                .equals("HEAD ");
          }
        }
      }
      ctx.fireChannelRead(msg);
    }
  }

  /**
   * After the HTTP decoder: refuses, and closes, what the mirror does not read, before Vert.x
   * handles it. The mirror is read-only, so any request with a body is refused (but a POST under
   * {@code /api/} whose {@code Content-Length} is at most {@link PrefetchHandler#BODY_LIMIT}: 413
   * when it is longer or chunked; this takes in one with both {@code Content-Length} and {@code Transfer-Encoding}, which a proxy in front
   * could frame differently); a transfer coding other than chunked is refused with 501; and only
   * HTTP/1.0 and 1.1 are spoken. Answering here means the body, broken or not, is never read.
   */
  private static final class Framing extends ChannelInboundHandlerAdapter {
    private final Waiting waiting;
    private boolean refused;

    Framing(Waiting waiting) {
      this.waiting = waiting;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (refused) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof HttpRequest request && request.decoderResult().isSuccess()) {
        String detail = why(request);
        if (detail != null) {
          refused = true;
          int status = detail.startsWith("HTTP") ? 505 : detail.startsWith("transfer") ? 501
              : detail.startsWith("an admin") ? 413 : 400;
          ReferenceCountUtil.release(msg);
          Buffer body = OciError.UNSUPPORTED.exception(detail).body().toBuffer();
          boolean head = request.method().equals(io.netty.handler.codec.http.HttpMethod.HEAD);
          FullHttpResponse response = new DefaultFullHttpResponse(io.netty.handler.codec.http.HttpVersion.HTTP_1_1,
              HttpResponseStatus.valueOf(status), head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body.getBytes()));
          ErrorHandler.bodyHeaders(body).forEach(response.headers()::set);
          response.headers().set(Headers.API_VERSION, Headers.API_VERSION_VALUE)
              .set(HttpHeaders.CONNECTION.toString(), "close");
          ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
          return;
        }
      }
      if (msg instanceof LastHttpContent) {
        waiting.atRequestStart = true;
      }
      ctx.fireChannelRead(msg);
    }

    private static boolean smallLength(String length) {
      try {
        long n = Long.parseLong(length.trim());
        return n >= 0 && n <= PrefetchHandler.BODY_LIMIT;
      } catch (NumberFormatException e) {
        return false;
      }
    }

    /** Why the request is refused, or null. */
    private static String why(HttpRequest request) {
      io.netty.handler.codec.http.HttpVersion version = request.protocolVersion();
      if (!version.equals(io.netty.handler.codec.http.HttpVersion.HTTP_1_1)
          && !version.equals(io.netty.handler.codec.http.HttpVersion.HTTP_1_0)) {
        return "HTTP/1.0 and HTTP/1.1 only, not " + version.text();
      }
      String transfer = request.headers().get(HttpHeaders.TRANSFER_ENCODING);
      String length = request.headers().get(HttpHeaders.CONTENT_LENGTH);
      if (transfer != null && length != null) {
        return "a request may have Content-Length or Transfer-Encoding, not both";
      }
      if (transfer != null && !transfer.trim().toLowerCase(Locale.ROOT).equals("chunked")) {
        return "transfer coding not supported: " + transfer;
      }
      if (transfer != null || length != null && !length.trim().equals("0")) {
        if (!request.method().equals(io.netty.handler.codec.http.HttpMethod.POST) || !request.uri().startsWith("/api/")) {
          return "this is a read-only mirror: requests have no body";
        }
        // The admin API's small JSON bodies, whose length is known before any of it is read.
        if (transfer != null || !smallLength(length)) {
          return "an admin request's body needs a Content-Length of at most " + PrefetchHandler.BODY_LIMIT + " bytes";
        }
      }
      return null;
    }
  }

  /** The port actually bound: differs from the configured one when that was 0. */
  public int actualPort() {
    return server.actualPort();
  }
}
