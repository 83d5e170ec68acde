package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Endpoint;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.Map;

/**
 * The one place failures become responses: the OCI error JSON with the code's own status.
 * Anything that is not a {@link RegistryException} is a bug, logged with its stack and shown to
 * the client only as UNKNOWN.
 */
final class ErrorHandler implements Handler<RoutingContext> {

  /** Routing-context key under which handlers note what kind of request failed. */
  static final String KIND = "mirror.kind";

  private static final EventLog LOG = EventLog.of(ErrorHandler.class);

  /** Seconds, for a 503 that names none: upstream trouble rarely clears within one. */
  private static final String UNAVAILABLE_RETRY_AFTER = "5";

  private final MirrorMetrics metrics;

  ErrorHandler(MirrorMetrics metrics) {
    this.metrics = metrics;
  }

  @Override
  public void handle(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    Throwable failure = ctx.failure();
    RegistryException error;
    if (failure instanceof RegistryException e) {
      error = e;
    } else if (failure == null && ctx.statusCode() == 404) {
      error = OciError.NAME_UNKNOWN.exception("no such endpoint");
    } else if (failure == null && ctx.statusCode() == 405) {
      error = OciError.UNSUPPORTED.exception("method not allowed");
    } else {
      error = OciError.UNKNOWN.exception(null);
      LOG.error("request.failed", failure, "method", ctx.request().method(), "path", ctx.request().path());
    }
    Endpoint kind = ctx.get(KIND);
    if (kind != null) {
      metrics.request(kind, isClientError(error) ? Result.CLIENT_ERROR : Result.ERROR);
    }
    if (response.headWritten()) {
      // Part of a body is out: only a broken connection tells the client it is incomplete.
      response.reset();
      return;
    }
    if (response.ended() || response.closed()) {
      return;
    }
    if (error.error().status() >= 500) {
      LOG.warn("request.unavailable", "method", ctx.request().method(), "path", ctx.request().path(),
          "error", error.getMessage());
    }
    response.headers().remove(HttpHeaders.CONTENT_LENGTH);
    response.headers().remove(HttpHeaders.CONTENT_RANGE);
    response.headers().remove(HttpHeaders.ETAG);
    response.headers().remove(Headers.CONTENT_DIGEST);
    response.setStatusCode(error.error().status());
    response.headers().addAll(error.headers());
    if (error.error().status() == 503 && !response.headers().contains(HttpHeaders.RETRY_AFTER)) {
      // Unavailable is temporary by definition: saying when to come back makes clients retry.
      response.putHeader(HttpHeaders.RETRY_AFTER, UNAVAILABLE_RETRY_AFTER);
    }
    send(response, error, ctx.request().method() == HttpMethod.HEAD);
  }

  /**
   * Writes the OCI error JSON and ends the response: the one writer of the error body, for this
   * handler and for requests refused before they are routed. A HEAD gets the headers alone.
   */
  static Future<Void> send(HttpServerResponse response, RegistryException error, boolean head) {
    Buffer body = error.body().toBuffer();
    bodyHeaders(body).forEach(response::putHeader);
    return head ? response.end() : response.end(body);
  }

  /** The headers that describe an error body, for a response written below Vert.x too. */
  static Map<String, String> bodyHeaders(Buffer body) {
    return Map.of(HttpHeaders.CONTENT_TYPE.toString(), "application/json",
        HttpHeaders.CONTENT_LENGTH.toString(), Integer.toString(body.length()));
  }

  /** A 4xx the client caused; upstream's rate limit (429) is a failure to serve, not the client's. */
  private static boolean isClientError(RegistryException error) {
    int status = error.error().status();
    return status < 500 && error.error() != OciError.TOOMANYREQUESTS;
  }
}
