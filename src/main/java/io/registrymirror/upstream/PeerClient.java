package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * Blobs from the replica that owns them, as a client of that replica's own blob path: the
 * owner's single flight, cache and verification apply as to any client. Every request carries
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
  private final Supplier<String> secret;
  private final MirrorMetrics metrics;
  private final BodyBudget budget;

  /**
   * @param http the pool for blob bodies
   * @param secret the cluster's secret, which the owner checks in place of a client's credentials
   */
  public PeerClient(Vertx vertx, HttpClient http, Supplier<String> secret, MirrorMetrics metrics,
      BodyBudget budget) {
    this.vertx = vertx;
    this.http = http;
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
    String uri = "http://" + peer + "/v2/" + target.name() + "/blobs/" + digest + "?ns="
        + URLEncoder.encode(upstream.name(), StandardCharsets.UTF_8);
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.GET)
        .setAbsoluteURI(uri)
        .putHeader(HEADER, secret.get())
        .setConnectTimeout(CONNECT_TIMEOUT.toMillis())
        .setIdleTimeout(upstream.config().idleTimeout().toMillis())
        .setFollowRedirects(false);
    BodyTap[] tap = {null};
    return http.request(options)
        .compose(req -> {
          tap[0] = BodyTap.install(req);
          return req.send();
        })
        .recover(err -> {
          metrics.peerRequest(0);
          return Future.failedFuture(new PeerUnavailable("replica " + peer + " is unreachable ("
              + UpstreamResponses.describe(err) + ")", err));
        })
        .compose(resp -> {
          resp.pause();
          resp.request().idleTimeout(upstream.config().idleTimeout().toMillis());
          metrics.peerRequest(resp.statusCode());
          if (resp.statusCode() == 200) {
            UpstreamExchange.Tapped first = new UpstreamExchange.Tapped(resp, tap[0]);
            return Future.succeededFuture(new BlobDownload(vertx, upstream, target.name(), digest, first,
                offset -> upstream.getBlobFrom(target.name(), digest, offset, null), false));
          }
          return failure(peer, resp);
        });
  }

  /** The owner's refusal, as the owner gave it: it is upstream's answer, which asking upstream would repeat. */
  private <T> Future<T> failure(String peer, HttpClientResponse resp) {
    return UpstreamResponses.errorBody(resp, budget).map(body -> {
      RegistryException e = UpstreamResponses.failure("replica " + peer, resp.statusCode(), resp.headers(), body,
          OciError.BLOB_UNKNOWN);
      throw e;
    });
  }
}
