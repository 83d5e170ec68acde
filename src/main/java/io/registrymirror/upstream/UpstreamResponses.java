package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.memory.BodyBudget.Held;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import java.time.Duration;

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
   * Resets {@code resp} unless it has ended within {@code limit}. Answers read whole (manifests,
   * listings, tokens, errors) are small, a manifest at most 4 MiB: a drip of a byte now and then
   * keeps the idle timer from firing, and would otherwise hold the request, and every client
   * waiting on it, for as long as the sender likes. Blob bodies have their rate watched instead
   * ({@link BlobDownload}). {@code who} names the sender in the error.
   */
  public static void endWithin(Vertx vertx, HttpClientResponse resp, Duration limit, String who) {
    long timer = vertx.setTimer(limit.toMillis(), id -> resp.request().reset(0, OciError.UNAVAILABLE.exception(
        who + " did not send its whole answer within " + limit.toMillis() + " ms")));
    resp.end().onComplete(ended -> vertx.cancelTimer(timer));
  }

  /**
   * Reads a paused response's body whole under the budget: reserved by its Content-Length up
   * front when it has one, grown chunk by chunk when not (or when upstream sends more than it
   * announced). Beyond {@code max} bytes, or when the budget cannot hold it, the connection is
   * dropped and the read fails. The caller releases the lease once it lets go of the body.
   */
  static Future<Held> readBody(HttpClientResponse resp, int max, OciError tooLarge, BodyBudget budget) {
    long length = contentLength(resp);
    if (length > max) {
      abandon(resp);
      return Future.failedFuture(tooLarge.exception("upstream response exceeds " + max + " bytes"));
    }
    long announced = Math.max(length, 0);
    return budget.reserve(announced).onFailure(e -> abandon(resp)).compose(lease -> {
      // Sized by Content-Length, the buffer is the body's one copy and never reallocated.
      Reading reading = new Reading(Buffer.buffer(length > 0 ? (int) length : 1024), announced);
      Future<Held> read = reading.promise.future();
      resp.handler(chunk -> {
        Buffer body = reading.body;
        if (body == null) {
          return;
        }
        long needed = (long) body.length() + chunk.length();
        try {
          if (needed > max) {
            throw tooLarge.exception("upstream response exceeds " + max + " bytes");
          }
          if (needed > reading.reserved) {
            lease.grow(needed - reading.reserved);
            reading.reserved = needed;
          }
        } catch (RegistryException e) {
          resp.request().reset();
          reading.fail(e);
          return;
        }
        body.appendBuffer(chunk);
      });
      resp.exceptionHandler(err -> reading.fail(err.getCause() instanceof RegistryException why
          ? why // the mirror reset the stream, and said why
          : OciError.UNAVAILABLE.exception("upstream response broke off (" + describe(err) + ")", err)));
      resp.endHandler(v -> reading.complete(lease));
      resp.resume();
      return read.onFailure(e -> lease.release());
    });
  }

  /**
   * A body being read, as the response's handlers see it. Vert.x keeps a finished exchange, and
   * so its handlers, reachable for a while after: once read or failed, they hold nothing.
   */
  private static final class Reading {
    Buffer body;
    Promise<Held> promise = Promise.promise();
    long reserved;

    Reading(Buffer body, long reserved) {
      this.body = body;
      this.reserved = reserved;
    }

    void complete(BodyBudget.Lease lease) {
      if (promise != null) {
        promise.tryComplete(new Held(body, lease));
      }
      body = null;
      promise = null;
    }

    void fail(RegistryException e) {
      if (promise != null) {
        promise.tryFail(e);
      }
      body = null;
      promise = null;
    }
  }

  /** A small error body, read under the budget and released at once: only its code is kept. */
  static Future<Buffer> errorBody(HttpClientResponse resp, BodyBudget budget) {
    return readBody(resp, 64 * 1024, OciError.UNAVAILABLE, budget)
        .map(held -> {
          held.lease().release();
          return held.body();
        })
        .recover(e -> Future.succeededFuture(null));
  }

  /**
   * The client's view of an upstream error, chosen by status: a 5xx is UNAVAILABLE and a 429
   * TOOMANYREQUESTS (keeping its Retry-After); a 404 or another 4xx keeps upstream's own OCI
   * code when it sent one we know, otherwise {@code notFound} for a 404 and UNAVAILABLE for the
   * rest. Auth failures (401, 403, or an UNAUTHORIZED code) become DENIED, never our
   * UNAUTHORIZED, which would make the client try credentials on the mirror.
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
    return NumericHeader.parse(resp.getHeader(HttpHeaders.CONTENT_LENGTH)).orElse(-1);
  }

  static String describe(Throwable err) {
    return err.getMessage() == null ? err.getClass().getSimpleName() : err.getMessage();
  }
}
