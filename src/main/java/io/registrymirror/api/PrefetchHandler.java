package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.ImageReference;
import io.registrymirror.proxy.PrefetchJob;
import io.registrymirror.proxy.Prefetcher;
import io.registrymirror.upstream.Target;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The prefetch API: {@code POST /api/v1/prefetch} with {@code {"image": "...", "platforms":
 * [...]}} queues a job and answers 202 with its status URL; {@code GET /api/v1/prefetch/<id>}
 * shows the job.
 */
final class PrefetchHandler {

  static final String PATH = "/api/v1/prefetch";
  /** A request body is one image and a few platforms: far below this. */
  static final int BODY_LIMIT = 64 * 1024;

  private static final Set<String> KEYS = Set.of("image", "platforms");
  private static final Pattern PLATFORM = Pattern.compile("[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?");
  private static final int MAX_PLATFORMS = 64;

  private final Upstreams upstreams;
  private final Prefetcher prefetcher;

  PrefetchHandler(Upstreams upstreams, Prefetcher prefetcher) {
    this.upstreams = upstreams;
    this.prefetcher = prefetcher;
  }

  void submit(RoutingContext ctx) {
    JsonObject body = object(ctx.body().buffer());
    for (String key : body.fieldNames()) {
      if (!KEYS.contains(key)) {
        throw invalid("unknown key '" + key + "': the body has \"image\" and optionally \"platforms\"");
      }
    }
    if (!(body.getValue("image") instanceof String text)) {
      throw invalid("\"image\" is required, a string like docker.io/library/nginx:1.27");
    }
    ImageReference image;
    try {
      image = ImageReference.parse(text);
    } catch (IllegalArgumentException e) {
      throw invalid(e.getMessage());
    }
    List<String> platforms = platforms(body.getValue("platforms"));
    // An unknown registry is refused here, as a pull naming it would be.
    Target target = upstreams.route(image.registry(), image.name());
    PrefetchJob job = prefetcher.submit(text, target, image.reference(), platforms);
    String url = PATH + "/" + job.id();
    ctx.response().setStatusCode(202).putHeader(HttpHeaders.LOCATION, url);
    ctx.json(job.toJson().put("url", url));
  }

  void status(RoutingContext ctx) {
    String id = ctx.pathParam("id");
    PrefetchJob job = id == null ? null : prefetcher.find(id);
    if (job == null) {
      throw OciError.NAME_UNKNOWN.exception("no prefetch job " + id + ": it never was, or it finished before the last "
          + Prefetcher.FINISHED_KEPT + " jobs that did");
    }
    ctx.json(job.toJson().put("url", PATH + "/" + job.id()));
  }

  private static JsonObject object(Buffer body) {
    if (body == null || body.length() == 0) {
      throw invalid("the body must be a JSON object like {\"image\": \"docker.io/library/nginx:1.27\"}");
    }
    try {
      return new JsonObject(body);
    } catch (RuntimeException notAnObject) {
      // said below, for any body that is not one JSON object
    }
    throw invalid("the body is not a JSON object");
  }

  private static List<String> platforms(Object value) {
    if (value == null) {
      return List.of();
    }
    if (!(value instanceof JsonArray array)) {
      throw invalid("\"platforms\" must be a list like [\"linux/amd64\", \"linux/arm64/v8\"]");
    }
    if (array.size() > MAX_PLATFORMS) {
      throw invalid("\"platforms\" names more than " + MAX_PLATFORMS + " platforms");
    }
    List<String> out = new ArrayList<>();
    for (Object item : array) {
      if (!(item instanceof String p) || !PLATFORM.matcher(p).matches()) {
        throw invalid("not a platform like linux/amd64 or linux/arm64/v8 in \"platforms\": " + item);
      }
      out.add(p);
    }
    return out;
  }

  private static RuntimeException invalid(String detail) {
    return OciError.NAME_INVALID.exception(detail);
  }
}
