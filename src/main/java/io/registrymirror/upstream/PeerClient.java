package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Blobs and manifests from the replica that owns them, as a client of that replica's own registry
 * API: the owner's single flight, cache and verification apply as to any client. Every request carries
 * the marker header, with the cluster's secret: the owner answers it from its cache or its
 * upstream and never forwards it again, so no request can go round in circles, even while two
 * replicas disagree about who owns a blob.
 */
public final class PeerClient {

  /** The marker of a request between replicas; its value is the cluster's secret. */
  public static final String HEADER = "Registry-Mirror-Peer";

  /** A replica that does not answer within this is taken for gone: the blob comes from upstream. */
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(2);

  /** Why a peer could not be asked: nothing came back from it, so upstream is the way. */
  public static final class PeerUnavailable extends RuntimeException {
    PeerUnavailable(String message, Throwable cause) {
      super(message, cause, false, false);
    }
  }

  private final Vertx vertx;
  private final HttpClient http;
  private final String scheme;
  private final Supplier<String> secret;
  private final MirrorMetrics metrics;
  private final BodyBudget budget;

  /**
   * @param http the pool for requests to replicas, with the trust their certificate needs
   * @param tls whether the replicas' listeners speak TLS (all share one configuration)
   * @param secret the cluster's secret, which the owner checks in place of a client's credentials
   */
  public PeerClient(Vertx vertx, HttpClient http, boolean tls, Supplier<String> secret, MirrorMetrics metrics,
      BodyBudget budget) {
    this.vertx = vertx;
    this.http = http;
    this.scheme = tls ? "https://" : "http://";
    this.secret = secret;
    this.metrics = metrics;
    this.budget = budget;
  }

  /**
   * GETs the blob from {@code peer} ({@code host:port}), for the repository and upstream of
   * {@code target}. A transfer that breaks off is resumed from upstream itself: the owner may be
   * gone, and the content is the same under its digest (which the caller verifies). Fails with
   * {@link PeerUnavailable} when the peer cannot be reached, or with the peer's answer.
   */
  public Future<BlobDownload> getBlob(String peer, Target target, Digest digest) {
    UpstreamClient upstream = target.upstream();
    BodyTap[] tap = {null};
    return send(peer, target, "/blobs/" + digest, null, req -> tap[0] = BodyTap.install(req)).compose(resp -> {
      if (resp.statusCode() == 200) {
        UpstreamExchange.Tapped first = new UpstreamExchange.Tapped(resp, tap[0]);
        return Future.succeededFuture(new BlobDownload(vertx, upstream, target.name(), digest, first,
            offset -> upstream.getBlobFrom(target.name(), digest, offset, null), false));
      }
      return failure(peer, resp, OciError.BLOB_UNKNOWN);
    });
  }

  /**
   * GETs a manifest by digest from {@code peer}, with {@code accept}, and checks it against the
   * digest; the body is held under the memory budget while {@code use} runs. Fails with
   * {@link PeerUnavailable} when the peer cannot be reached, or with the peer's answer.
   */
  public <T> Future<T> getManifest(String peer, Target target, Digest digest, String accept,
      Function<Manifest, Future<T>> use) {
    return send(peer, target, "/manifests/" + digest, accept, null).compose(resp -> {
      if (resp.statusCode() != 200) {
        return failure(peer, resp, OciError.MANIFEST_UNKNOWN);
      }
      String type = MediaTypes.bare(resp.getHeader(HttpHeaders.CONTENT_TYPE));
      return UpstreamResponses.readBody(resp, Manifest.MAX_SIZE, OciError.MANIFEST_INVALID, budget)
          .compose(held -> {
            Future<T> used;
            if (type.isEmpty() || !Manifest.hash(digest.algorithm(), held.body()).equals(digest)) {
              used = Future.failedFuture(OciError.UNAVAILABLE.exception("replica " + peer
                  + " sent a manifest that does not match " + digest));
            } else {
              try {
                used = use.apply(new Manifest(digest, type, held.body()));
              } catch (RuntimeException e) {
                used = Future.failedFuture(e);
              }
            }
            return used.andThen(r -> held.lease().release());
          });
    });
  }

  /** One GET of the peer's registry API, marked; {@code sending} sees the request before it goes. */
  private Future<HttpClientResponse> send(String peer, Target target, String suffix, String accept,
      Consumer<HttpClientRequest> sending) {
    UpstreamClient upstream = target.upstream();
    String uri = scheme + peer + "/v2/" + target.name() + suffix + "?ns="
        + URLEncoder.encode(upstream.name(), StandardCharsets.UTF_8);
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.GET)
        .setAbsoluteURI(uri)
        .putHeader(HEADER, secret.get())
        .setConnectTimeout(CONNECT_TIMEOUT.toMillis())
        .setIdleTimeout(upstream.config().idleTimeout().toMillis())
        .setFollowRedirects(false);
    if (accept != null) {
      options.putHeader(HttpHeaders.ACCEPT, accept);
    }
    return http.request(options)
        .compose(req -> {
          if (sending != null) {
            sending.accept(req);
          }
          return req.send();
        })
        .recover(err -> {
          metrics.peerRequest(0);
          return Future.failedFuture(new PeerUnavailable("replica " + peer + " is unreachable ("
              + UpstreamResponses.describe(err) + ")", err));
        })
        .map(resp -> {
          resp.pause();
          resp.request().idleTimeout(upstream.config().idleTimeout().toMillis());
          metrics.peerRequest(resp.statusCode());
          if (sending == null || resp.statusCode() != 200) {
            // Read whole (a manifest, an error); a blob's body flows as long as it takes.
            UpstreamResponses.endWithin(vertx, resp, upstream.config().idleTimeout(), "replica " + peer);
          }
          return resp;
        });
  }

  /** The owner's refusal, as the owner gave it: it is upstream's answer, which asking upstream would repeat. */
  private <T> Future<T> failure(String peer, HttpClientResponse resp, OciError missing) {
    return UpstreamResponses.errorBody(resp, budget).map(body -> {
      throw UpstreamResponses.failure("replica " + peer, resp.statusCode(), resp.headers(), body, missing);
    });
  }
}
