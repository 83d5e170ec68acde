package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.Reference;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagRecord;
import io.registrymirror.tags.TagStore;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.Comparator;
import java.util.Map;

/**
 * The tag tracking API: {@code GET /api/v1/tags}, optionally filtered by {@code upstream} and
 * {@code repository}, lists every tracked tag; {@code GET /api/v1/tags/<upstream>/<name>/<tag>}
 * gives one with its history of moves.
 */
final class TagsHandler {

  static final String PREFIX = "/api/v1/tags";

  private final TagStore tags;

  TagsHandler(TagStore tags) {
    this.tags = tags;
  }

  void handle(RoutingContext ctx) {
    String path = ctx.request().path();
    if (path.equals(PREFIX) || path.equals(PREFIX + "/")) {
      list(ctx);
    } else {
      one(ctx, path.substring(PREFIX.length() + 1));
    }
  }

  private void list(RoutingContext ctx) {
    String upstream = RegistryApi.queryParams(ctx).get("upstream");
    String repository = RegistryApi.queryParams(ctx).get("repository");
    JsonArray out = new JsonArray();
    tags.all().stream()
        .filter(e -> upstream == null || e.getKey().upstream().equals(upstream))
        .filter(e -> repository == null || e.getKey().name().value().equals(repository))
        .sorted(Comparator.comparing((Map.Entry<TagKey, TagRecord> e) -> e.getKey().toString()))
        .forEach(e -> out.add(e.getValue().toSummaryJson(e.getKey())));
    ctx.json(new JsonObject().put("tags", out));
  }

  private void one(RoutingContext ctx, String rest) {
    int first = rest.indexOf('/');
    int last = rest.lastIndexOf('/');
    if (first <= 0 || last <= first) {
      throw OciError.NAME_INVALID.exception("expected /api/v1/tags/<upstream>/<name>/<tag>");
    }
    String name = rest.substring(first + 1, last);
    String tag = rest.substring(last + 1);
    if (!RepositoryName.valid(name) || !Reference.validTag(tag)) {
      throw OciError.NAME_INVALID.exception("invalid repository name or tag");
    }
    TagKey key = new TagKey(rest.substring(0, first), new RepositoryName(name), tag);
    TagRecord r = tags.cached(key);
    if (r == null) {
      throw OciError.MANIFEST_UNKNOWN.exception("tag " + key + " is not tracked");
    }
    ctx.json(r.toDetailJson(key));
  }
}
