package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;

/** Reading upstream responses: bounded bodies, lengths, and errors as the client must see them. */
public final class UpstreamResponses {

  private UpstreamResponses() {}

  /**
   * Drops a response unread, resetting its stream, unless it has ended. The reset comes back to the response as an
   * exception: it is ours and expected, and without a handler Vert.x would log it as an
   * unhandled error ("Stream reset") each time.
   */
  public static void abandon(HttpClientResponse resp) {
    try {
      resp.exceptionHandler(expected -> { });
    } catch (IllegalStateException ended) {
      return; // read to its end already: nothing left to drop
    }
    resp.request().reset();
  }

  /**
   * Reads a paused response's body, failing with {@code tooLarge} (and dropping the connection)
   * beyond {@code max} bytes.
   */
  static Future<Buffer> readBody(HttpClientResponse resp, int max, OciError tooLarge) {
    long length = contentLength(resp);
    if (length > max) {
      abandon(resp);
      return Future.failedFuture(tooLarge.exception("upstream response exceeds " + max + " bytes"));
    }
    Promise<Buffer> promise = Promise.promise();
    Buffer body = Buffer.buffer(length > 0 ? (int) length : 1024);
    resp.handler(chunk -> {
      if (body.length() + chunk.length() > max) {
        resp.handler(null);
        resp.request().reset();
        promise.tryFail(tooLarge.exception("upstream response exceeds " + max + " bytes"));
      } else {
        body.appendBuffer(chunk);
      }
    });
    resp.exceptionHandler(err -> promise.tryFail(OciError.UNAVAILABLE.exception(
        "upstream response broke off (" + describe(err) + ")", err)));
    resp.endHandler(v -> promise.tryComplete(body));
    resp.resume();
    return promise.future();
  }

  /**
   * The client's view of an upstream error: upstream's own OCI code when it sent one we know,
   * otherwise one chosen by status. Auth failures never become our UNAUTHORIZED, which would
   * make the client try credentials on the mirror; a 429 keeps its Retry-After.
   */
  public static RegistryException failure(String upstream, int status, MultiMap headers, Buffer body,
      OciError notFound) {
    OciError code = switch (status) {
      case 404 -> codeFromBody(body, notFound);
      case 401, 403 -> OciError.DENIED;
      case 429 -> OciError.TOOMANYREQUESTS;
      default -> status >= 500 ? OciError.UNAVAILABLE : codeFromBody(body, OciError.UNAVAILABLE);
    };
    if (code == OciError.UNAUTHORIZED) {
      code = OciError.DENIED;
    }
    RegistryException e = code.exception("upstream " + upstream + " answered " + status);
    String retryAfter = headers.get(HttpHeaders.RETRY_AFTER);
    if (status == 429 && retryAfter != null) {
      e.withHeader(HttpHeaders.RETRY_AFTER.toString(), retryAfter);
    }
    return e;
  }

  private static OciError codeFromBody(Buffer body, OciError fallback) {
    if (body == null || body.length() == 0) {
      return fallback;
    }
    try {
      String code = body.toJsonObject().getJsonArray("errors").getJsonObject(0).getString("code");
      return OciError.valueOf(code);
    } catch (RuntimeException e) {
      return fallback;
    }
  }

  /** The response's Content-Length, or -1 when it has none. */
  public static long contentLength(HttpClientResponse resp) {
    String header = resp.getHeader(HttpHeaders.CONTENT_LENGTH);
    if (header == null) {
      return -1;
    }
    try {
      return Long.parseLong(header.trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  static String describe(Throwable err) {
    return err.getMessage() == null ? err.getClass().getSimpleName() : err.getMessage();
  }
}
