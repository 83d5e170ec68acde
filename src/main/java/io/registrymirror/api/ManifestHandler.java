package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.AcceptedTypes;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.oci.Reference;
import io.registrymirror.proxy.ManifestAnswer;
import io.registrymirror.proxy.ManifestService;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;

/**
 * {@code GET}/{@code HEAD /v2/<name>/manifests/<reference>}: the exact bytes upstream served,
 * with its media type, never converted: from memory when the hot cache has it, else sent from
 * its file in the cache.
 */
final class ManifestHandler {

  private final ManifestService manifests;
  private final MirrorMetrics metrics;
  /** Sends stored manifests as it sends cached blobs: as files, never through the heap. */
  private final BlobHandler files;

  ManifestHandler(ManifestService manifests, MirrorMetrics metrics, BlobHandler files) {
    this.manifests = manifests;
    this.metrics = metrics;
    this.files = files;
  }

  void handle(RoutingContext ctx, Target target, String reference) {
    Reference ref = parse(reference);
    boolean head = ctx.request().method() == HttpMethod.HEAD;
    AcceptedTypes accept = AcceptedTypes.parse(ctx.request().headers().getAll(HttpHeaders.ACCEPT));
    ManifestAnswer hot = manifests.fromMemory(target, ref, accept);
    if (hot != null) {
      send(ctx, hot, head);
      return;
    }
    // A request from another replica (or any that says it is) is answered here, never sent on.
    boolean forPeer = ctx.request().headers().contains(PeerClient.HEADER);
    manifests.get(target, ref, accept, !head, forPeer).onSuccess(a -> send(ctx, a, head)).onFailure(ctx::fail);
  }

  private void send(RoutingContext ctx, ManifestAnswer answer, boolean head) {
    HttpServerResponse response = ctx.response();
    Descriptor d = answer.descriptor();
    response.putHeader(HttpHeaders.CONTENT_TYPE, d.mediaType())
        .putHeader(Headers.CONTENT_DIGEST, d.digest().toString())
        .putHeader(HttpHeaders.ETAG, BlobHandler.etag(d.digest()))
        .putHeader(Headers.CACHE_STATUS, answer.result().label());
    metrics.request(Endpoint.MANIFEST, answer.result());
    if (BlobHandler.matches(ctx.request(), d.digest())) {
      response.setStatusCode(304).end();
    } else if (head) {
      response.putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(d.size())).end();
    } else if (answer.manifest() != null) {
      // The one buffer the manifest was read into; Vert.x writes it without copying.
      response.end(answer.manifest().body());
    } else {
      files.send(ctx, answer.file().toString(), 0, d.size()).onFailure(err -> {
        if (!response.headWritten()) {
          ctx.fail(OciError.UNAVAILABLE.exception("cached manifest " + d.digest() + " is unreadable; retry"));
        }
      });
    }
  }

  private static Reference parse(String reference) {
    try {
      return Reference.parse(reference);
    } catch (IllegalArgumentException e) {
      OciError code = reference.indexOf(':') >= 0 ? OciError.DIGEST_INVALID : OciError.TAG_INVALID;
      throw code.exception(code == OciError.TAG_INVALID
          ? "tags must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}" : e.getMessage());
    }
  }
}
