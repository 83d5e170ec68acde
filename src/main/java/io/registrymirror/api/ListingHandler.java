package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.oci.MediaTypes;
import io.registrymirror.oci.Reference;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.upstream.Target;
import io.registrymirror.upstream.UpstreamClient.Passthrough;
import io.registrymirror.upstream.UpstreamResponses;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code tags/list} and {@code referrers}: small JSON lists that upstream answers and the mirror
 * passes through, a 404 included, with pagination links rewritten to point at the mirror.
 */
final class ListingHandler {

  /** Tag lists of very popular repositories run to a few MiB; anything beyond is refused. */
  private static final int MAX_BODY = 8 * 1024 * 1024;
  private static final int MAX_PAGE = 10_000;
  private static final Pattern LINK = Pattern.compile("<[^>?]*(\\?[^>]*)?>(.*)");
  private static final Pattern MEDIA_TYPE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*");

  private final MirrorMetrics metrics;

  ListingHandler(MirrorMetrics metrics) {
    this.metrics = metrics;
  }

  void tags(RoutingContext ctx, Target target, RepositoryName clientName) {
    StringBuilder query = new StringBuilder();
    MultiMap params = RegistryApi.queryParams(ctx);
    String n = params.get("n");
    if (n != null) {
      if (!n.matches("[0-9]{1,9}")) {
        throw OciError.PAGINATION_NUMBER_INVALID.exception("n must be a non-negative integer");
      }
      query.append("n=").append(Math.min(Integer.parseInt(n), MAX_PAGE));
    }
    String last = params.get("last");
    if (last != null) {
      if (!Reference.validTag(last)) {
        throw OciError.TAG_INVALID.exception("last must be a tag");
      }
      query.append(query.length() > 0 ? "&" : "").append("last=").append(last);
    }
    forward(ctx, target, clientName, "/tags/list", query.toString(), Endpoint.TAGS);
  }

  void referrers(RoutingContext ctx, Target target, RepositoryName clientName, String reference) {
    Digest digest = BlobHandler.parseDigest(reference);
    String artifactType = RegistryApi.queryParams(ctx).get("artifactType");
    String query = "";
    // Filtering is optional for a registry: a filter upstream cannot be asked for is dropped,
    // and the client, seeing no OCI-Filters-Applied, filters for itself.
    if (artifactType != null && MEDIA_TYPE.matcher(artifactType).matches() && artifactType.length() <= 255) {
      query = "artifactType=" + URLEncoder.encode(artifactType, StandardCharsets.UTF_8);
    }
    forward(ctx, target, clientName, "/referrers/" + digest, query, Endpoint.REFERRERS);
  }

  private void forward(RoutingContext ctx, Target target, RepositoryName clientName, String endpoint,
      String query, Endpoint kind) {
    String suffix = query.isEmpty() ? endpoint : endpoint + "?" + query;
    target.upstream().fetch(target.name(), suffix, MAX_BODY).onSuccess(p -> {
      try {
        relay(ctx, target, clientName, endpoint, kind, p);
      } catch (RuntimeException e) {
        p.lease().release();
        ctx.fail(e);
      }
    }).onFailure(ctx::fail);
  }

  /**
   * Passes upstream's answer on. Its body stays under the memory budget until written out; a
   * failure thrown here releases it before the failure handler answers.
   */
  private void relay(RoutingContext ctx, Target target, RepositoryName clientName, String endpoint, Endpoint kind,
      Passthrough p) {
    if (p.status() != 200 && p.status() != 404) {
      throw UpstreamResponses.failure(target.upstream().name(), p.status(), p.headers(), p.body(),
          OciError.NAME_UNKNOWN);
    }
    if (p.status() == 404 && !isJson(p)) {
      // A registry without the endpoint answers with a plain-text page: what the client
      // gets is still a 404, but as the error JSON every client understands.
      throw (kind == Endpoint.TAGS ? OciError.NAME_UNKNOWN : OciError.MANIFEST_UNKNOWN)
          .exception("upstream " + target.upstream().name() + " answered 404");
    }
    if (!isJson(p)) {
      // Whatever is passed on must be the JSON list it claims to be, not a page of some
      // other service's data under that service's own content type.
      String type = p.headers().get(HttpHeaders.CONTENT_TYPE);
      throw OciError.UNAVAILABLE.exception("upstream " + target.upstream().name() + " answered "
          + endpoint.substring(1) + " with " + (type == null ? "no content type" : "'" + MediaTypes.bare(type) + "'")
          + ", not JSON");
    }
    metrics.request(kind, Result.MISS);
    HttpServerResponse response = ctx.response().setStatusCode(p.status());
    copy(p, response, HttpHeaders.CONTENT_TYPE.toString());
    copy(p, response, "OCI-Filters-Applied");
    String link = p.headers().get(Headers.LINK);
    if (link != null) {
      String rewritten = rewriteLink(link, clientName, endpoint, RegistryApi.queryParams(ctx).get("ns"));
      if (rewritten != null) {
        response.putHeader(Headers.LINK, rewritten);
      }
    }
    response.end(p.body()).onComplete(written -> p.lease().release());
  }

  private static boolean isJson(Passthrough p) {
    return MediaTypes.isJson(p.headers().get(HttpHeaders.CONTENT_TYPE));
  }

  private static void copy(Passthrough p, HttpServerResponse response, String header) {
    String value = p.headers().get(header);
    if (value != null) {
      response.putHeader(header, value);
    }
  }

  /** Upstream's next-page link names upstream's path; the client must come back to the mirror. */
  static String rewriteLink(String link, RepositoryName clientName, String endpoint, String ns) {
    Matcher m = LINK.matcher(link.trim());
    if (!m.matches()) {
      return null;
    }
    String query = m.group(1) == null ? "" : m.group(1);
    if (ns != null) {
      query += (query.isEmpty() ? "?" : "&") + "ns=" + URLEncoder.encode(ns, StandardCharsets.UTF_8);
    }
    return "</v2/" + clientName + endpoint + query + ">" + m.group(2);
  }
}
