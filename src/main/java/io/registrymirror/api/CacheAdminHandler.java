package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.proxy.CacheAdmin;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/**
 * Cache administration, under {@code /api/v1/cache}: {@code GET} the totals;
 * {@code GET /repositories?page=1&perPage=100} what each repository has cached;
 * {@code DELETE /blobs/<digest>}, {@code /manifests/<digest>} or
 * {@code /repositories/<upstream>/<name>}. Routed behind the admin guard.
 */
final class CacheAdminHandler {

  static final String PREFIX = "/api/v1/cache";
  private static final int MAX_PER_PAGE = 1000;

  private final CacheAdmin admin;

  CacheAdminHandler(CacheAdmin admin) {
    this.admin = admin;
  }

  void handle(RoutingContext ctx) {
    String rest = ctx.request().path().substring(PREFIX.length());
    HttpMethod method = ctx.request().method();
    if (method == HttpMethod.GET && (rest.isEmpty() || rest.equals("/"))) {
      ctx.json(admin.totals());
    } else if (method == HttpMethod.GET && rest.equals("/repositories")) {
      int page = number(ctx, "page", 1, Integer.MAX_VALUE / MAX_PER_PAGE);
      int perPage = number(ctx, "perPage", 100, MAX_PER_PAGE);
      admin.repositories(page, perPage).onSuccess(ctx::json).onFailure(ctx::fail);
    } else if (method == HttpMethod.DELETE && rest.startsWith("/blobs/")) {
      deleted(ctx, admin.deleteBlob(BlobHandler.parseDigest(rest.substring("/blobs/".length()))));
    } else if (method == HttpMethod.DELETE && rest.startsWith("/manifests/")) {
      deleted(ctx, admin.deleteManifest(BlobHandler.parseDigest(rest.substring("/manifests/".length()))));
    } else if (method == HttpMethod.DELETE && rest.startsWith("/repositories/")) {
      String path = rest.substring("/repositories/".length());
      int slash = path.indexOf('/');
      String name = slash < 0 ? "" : path.substring(slash + 1);
      if (slash <= 0 || !RepositoryName.valid(name)) {
        throw OciError.NAME_INVALID.exception("expected " + PREFIX + "/repositories/<upstream>/<name>");
      }
      admin.deleteRepository(path.substring(0, slash), new RepositoryName(name))
          .onSuccess(ctx::json).onFailure(ctx::fail);
    } else {
      throw OciError.UNSUPPORTED.exception(method + " " + PREFIX + rest + " is not a cache administration endpoint");
    }
  }

  private static void deleted(RoutingContext ctx, Future<Long> deletion) {
    deletion.onSuccess(bytes -> ctx.json(new JsonObject().put("bytes", bytes))).onFailure(ctx::fail);
  }

  /** A whole number query parameter between 1 and {@code max}, or its default. */
  private static int number(RoutingContext ctx, String name, int fallback, int max) {
    String value = RegistryApi.queryParams(ctx).get(name);
    if (value == null) {
      return fallback;
    }
    try {
      int n = Integer.parseInt(value);
      if (n >= 1 && n <= max) {
        return n;
      }
    } catch (NumberFormatException e) {
      // refused below
    }
    throw OciError.PAGINATION_NUMBER_INVALID.exception(name + " must be a whole number from 1 to " + max);
  }
}
