package io.registrymirror.upstream;

import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.HttpUrl;
import io.registrymirror.oci.RepositoryName;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.net.URI;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One request to an upstream and what it takes to get a usable answer: the connection pool,
 * timeouts, one answer to an auth challenge, redirects, and the quota upstream reports. The endpoints built on it are in {@link UpstreamClient}.
 */
final class UpstreamExchange {

  private static final int MAX_REDIRECTS = 5;

  private final Vertx vertx;
  private final HttpClient metadata;
  private final HttpClient content;
  private final UpstreamConfig config;
  private final MirrorMetrics metrics;
  private final Authenticator auth;
  private final RemoteHosts hosts;
  private volatile int rateLimitRemaining = -1;
  private volatile int rateLimitLimit = -1;

  UpstreamExchange(Vertx vertx, HttpClient metadata, HttpClient content, UpstreamConfig config,
      MirrorMetrics metrics, Authenticator auth, RemoteHosts hosts) {
    this.vertx = vertx;
    this.metadata = metadata;
    this.content = content;
    this.config = config;
    this.metrics = metrics;
    this.auth = auth;
    this.hosts = hosts;
  }

  private String name() {
    return config.name();
  }

  int rateLimitRemaining() {
    return rateLimitRemaining;
  }

  int rateLimitLimit() {
    return rateLimitLimit;
  }

  /** {@code ratelimit-remaining: 76;w=21600}, as Docker Hub sends it: the count before the {@code ;}. */
  private static int quota(String header) {
    if (header == null) {
      return -1;
    }
    int semi = header.indexOf(';');
    long count = NumericHeader.parse(semi < 0 ? header : header.substring(0, semi)).orElse(-1);
    return count == (int) count ? (int) count : -1;
  }

  /**
   * Any request may be redirected: registries send blob downloads to a CDN, and registry.k8s.io
   * sends every request, manifests included, to a regional registry. A target on another host
   * gets no credentials, and must pass {@link RemoteHosts}: an upstream cannot have the mirror
   * fetch, and pass on to its clients, what a host on the mirror's own network answers. What
   * comes back is checked as an answer from the upstream itself would be (a manifest against
   * its digest, a listing as bounded JSON). Blob GETs go through {@link #getBody} instead.
   */
  Future<HttpClientResponse> send(HttpMethod method, RepositoryName name, String suffix,
      MultiMap headers) {
    URI url = URI.create(config.url() + "/v2/" + name + suffix);
    return send(metadata, method, "repository:" + name + ":pull", url, null, headers,
        MAX_REDIRECTS, false, null)
        .onSuccess(resp -> UpstreamResponses.endWithin(vertx, resp, config.idleTimeout(), "upstream " + name()));
  }

  /** A blob GET's answer: the response, and the tap that holds its body on a 200 or 206. */
  record Tapped(HttpClientResponse response, BodyTap tap) {}

  /**
   * GETs a blob from the pool for long transfers, following redirects, with a {@link BodyTap}
   * on each request: the final response's body is read as Netty's buffers.
   */
  Future<Tapped> getBody(RepositoryName name, String suffix, MultiMap headers) {
    URI url = URI.create(config.url() + "/v2/" + name + suffix);
    // The final response answers the last request sent: its tap is the last installed.
    AtomicReference<BodyTap> last = new AtomicReference<>();
    return send(content, HttpMethod.GET, "repository:" + name + ":pull", url, null, headers,
        MAX_REDIRECTS, false, req -> last.set(BodyTap.install(req)))
        .map(resp -> {
          if (resp.statusCode() != 200 && resp.statusCode() != 206) {
            // An error, read whole: a blob's body has its rate watched instead.
            UpstreamResponses.endWithin(vertx, resp, config.idleTimeout(), "upstream " + name());
          }
          return new Tapped(resp, last.get());
        });
  }

  /**
   * One request, following redirects and answering one auth challenge. Credentials go only to
   * the upstream's own origin: a redirect to a CDN must not carry them. A request to another
   * host goes to {@code server}, the address {@link RemoteHosts} checked for it.
   */
  private Future<HttpClientResponse> send(HttpClient pool, HttpMethod method, String scope, URI url,
      SocketAddress server, MultiMap headers, int redirectsLeft, boolean challenged,
      Consumer<HttpClientRequest> sending) {
    boolean ownHost = HttpUrl.sameOrigin(url, config.url());
    RequestOptions options = new RequestOptions()
        .setMethod(method)
        .setAbsoluteURI(url.toString())
        .setHeaders(MultiMap.caseInsensitiveMultiMap().addAll(headers))
        .setConnectTimeout(config.connectTimeout().toMillis())
        .setIdleTimeout(config.idleTimeout().toMillis())
        .setFollowRedirects(false);
    if (server != null) {
      // The URL's host still names the Host header and the TLS server name to verify.
      options.setServer(server);
    }
    String authorization = ownHost ? auth.cached(scope) : null;
    if (authorization != null) {
      options.putHeader(HttpHeaders.AUTHORIZATION, authorization);
    }
    long started = System.nanoTime();
    return pool.request(options)
        .compose(req -> {
          if (sending != null) {
            sending.accept(req);
          }
          return req.send();
        })
        .recover(err -> {
          metrics.upstreamRequest(name(), method.name(), 0, System.nanoTime() - started);
          return Future.failedFuture(OciError.UNAVAILABLE.exception(
              "upstream " + name() + " is unreachable (" + UpstreamResponses.describe(err) + ")", err));
        })
        .compose(resp -> {
          resp.pause();
          // Vert.x stops the request's idle timer once headers are in; restarted, it also bounds
          // the wait between body chunks, each of which pushes it back.
          resp.request().idleTimeout(config.idleTimeout().toMillis());
          int status = resp.statusCode();
          metrics.upstreamRequest(name(), method.name(), status, System.nanoTime() - started);
          int remaining = quota(resp.getHeader("ratelimit-remaining"));
          if (remaining >= 0) {
            rateLimitRemaining = remaining;
            rateLimitLimit = quota(resp.getHeader("ratelimit-limit"));
          }
          if (status == 401 && ownHost && !challenged) {
            resp.resume();
            return auth.authenticate(Challenge.parse(resp.getHeader("WWW-Authenticate")), scope, authorization)
                .compose(v -> send(pool, method, scope, url, server, headers, redirectsLeft, true, sending));
          }
          String location = resp.getHeader(HttpHeaders.LOCATION);
          if (isRedirect(status) && location != null) {
            resp.resume();
            if (redirectsLeft == 0) {
              return Future.failedFuture(OciError.UNAVAILABLE.exception(
                  "upstream " + name() + " redirected more than " + MAX_REDIRECTS + " times"));
            }
            URI next = resolve(url, location);
            if (next == null) {
              return Future.failedFuture(OciError.UNAVAILABLE.exception(
                  "upstream " + name() + " redirected to an invalid location"));
            }
            if (HttpUrl.sameOrigin(next, config.url())) {
              return send(pool, method, scope, next, null, headers, redirectsLeft - 1, challenged, sending);
            }
            return hosts.address(next, "a redirect").compose(address ->
                send(pool, method, scope, next, address, headers, redirectsLeft - 1, challenged, sending));
          }
          return Future.succeededFuture(resp);
        });
  }

  /** A redirect target, or null unless it is an absolute http(s) URL with a host. */
  private static URI resolve(URI base, String location) {
    try {
      URI next = base.resolve(location.trim());
      return HttpUrl.isHttp(next) ? next : null;
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  private static boolean isRedirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
  }
}
