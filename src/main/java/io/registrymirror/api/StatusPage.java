package io.registrymirror.api;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * The status page for people at {@code GET /}: a static page whose script fetches
 * {@link StatusHandler#PATH} and fills itself in, and its script and style under
 * {@link #ASSETS}. The files are read from the jar once, when this class is loaded: Vert.x's
 * class-path file resolving is off, and reading a jar entry per request would block the event
 * loop.
 */
final class StatusPage {

  static final String PATH = "/";
  static final String ASSETS = "/status/";

  /**
   * Only this origin's script, style and requests, none inline (the script builds the page with
   * text nodes; a policy that refuses inline script is the second line should one slip), no
   * framing, and no forms or base URL to redirect.
   */
  private static final String POLICY = "default-src 'self'; base-uri 'none'; form-action 'none'; "
      + "frame-ancestors 'none'";

  /** An asset of the page: its bytes and type. */
  private record Asset(byte[] body, String type) {}

  private static final Asset PAGE = asset("index.html", "text/html; charset=utf-8");
  private static final Map<String, Asset> FILES = Map.of(
      "page.js", asset("page.js", "text/javascript; charset=utf-8"),
      "page.css", asset("page.css", "text/css; charset=utf-8"));

  private StatusPage() {}

  static void page(RoutingContext ctx) {
    send(ctx, PAGE);
  }

  /** One of the page's files, or on to the next route (a 404) for any other name. */
  static void asset(RoutingContext ctx) {
    Asset asset = FILES.get(ctx.request().path().substring(ASSETS.length()));
    if (asset == null) {
      ctx.next();
      return;
    }
    send(ctx, asset);
  }

  private static void send(RoutingContext ctx, Asset asset) {
    ctx.response()
        .putHeader(HttpHeaders.CONTENT_TYPE, asset.type())
        .putHeader("Content-Security-Policy", POLICY)
        .putHeader("X-Content-Type-Options", "nosniff")
        .putHeader("Referrer-Policy", "no-referrer")
        // Small enough to send each time, and never a stale script after an upgrade.
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-cache")
        // Set here, as Vert.x leaves it out of the answer to a HEAD.
        .putHeader(HttpHeaders.CONTENT_LENGTH, String.valueOf(asset.body().length))
        .end(Buffer.buffer(asset.body()));
  }

  private static Asset asset(String name, String type) {
    try (InputStream in = StatusPage.class.getResourceAsStream("/status/" + name)) {
      if (in == null) {
        throw new IllegalStateException("status/" + name + " is missing from the class path");
      }
      return new Asset(in.readAllBytes(), type);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
