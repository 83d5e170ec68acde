package io.registrymirror.upstream;

import io.registrymirror.concurrent.SingleFlight;
import io.registrymirror.config.Credentials;
import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.oci.HttpUrl;
import io.registrymirror.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Answers an upstream's challenges. For Bearer, the token flow of the distribution auth spec:
 * fetch a token for the scope from the realm, anonymously or with the upstream's credentials,
 * and keep it per scope until shortly before it expires, so that most upstream requests carry a
 * valid token and cost no extra round trip. For Basic, the credentials themselves, sent with
 * every request once the upstream has asked for them.
 *
 * <p>Credentials never appear in an error message: they are only ever put in headers. They go
 * only to a realm of the upstream's own scheme, host and port, or to an https realm whose origin
 * the configuration names ({@code tokenRealms}): a realm on another port of the same host may be
 * another program, and one over plain http would show them to the network. A realm on another
 * host is asked anonymously only if it is not on an internal address ({@link RemoteHosts}).
 * Tokens come from a password file that may change: a new password drops every token.
 */
final class Authenticator {

  /** Tokens without {@code expires_in} last 60 s, and clients treat anything shorter as 60 s. */
  private static final long MIN_LIFETIME_SECONDS = 60;

  /** A token is renewed at least daily, whatever lifetime it claims. */
  private static final long MAX_LIFETIME_SECONDS = 24 * 3600;

  /** Token answers are a few KiB at most; Docker Hub's run to about 4 KiB. */
  static final int MAX_ANSWER = 64 * 1024;

  private record Token(String header, long expiresAtNanos) {}

  private final Vertx vertx;
  private final HttpClient pool;
  private final BodyBudget budget;
  private final String upstream;
  private final URI origin;
  private final List<URI> tokenRealms;
  private final RemoteHosts hosts;
  private final Duration timeout;
  private final Map<String, Token> byScope = new ConcurrentHashMap<>();
  private final SingleFlight<String, String> fetches = new SingleFlight<>();
  private volatile Credentials credentials;
  private volatile boolean basic;

  Authenticator(Vertx vertx, HttpClient pool, UpstreamConfig config, RemoteHosts hosts, BodyBudget budget) {
    this.vertx = vertx;
    this.pool = pool;
    this.budget = budget;
    this.upstream = config.name();
    this.origin = config.url();
    this.tokenRealms = config.tokenRealms();
    this.hosts = hosts;
    this.credentials = config.credentials();
    this.timeout = config.idleTimeout();
  }

  /**
   * Uses a new password from now on. Tokens got with the old one are dropped: a revoked password
   * must not keep working until they expire.
   */
  void rotate(String password) {
    credentials = credentials.withPassword(password);
    byScope.clear();
  }

  /** A still-valid {@code Authorization} value for the scope, or null. */
  String cached(String scope) {
    Credentials current = credentials;
    if (basic && current != null) {
      return current.basic();
    }
    Token t = byScope.get(scope);
    if (t == null) {
      return null;
    }
    if (expired(t)) {
      byScope.remove(scope, t);
      return null;
    }
    return t.header();
  }

  private static boolean expired(Token t) {
    return System.nanoTime() - t.expiresAtNanos() >= 0;
  }

  /**
   * Answers a challenge for {@code scope} to a request that carried {@code rejected} (null when it
   * carried none); concurrent answers for one scope share a fetch.
   */
  Future<String> authenticate(Challenge challenge, String scope, String rejected) {
    Credentials own = credentials;
    if (challenge != null && challenge.isBasic() && own != null) {
      String header = own.basic();
      if (header.equals(rejected)) {
        return Future.failedFuture(OciError.DENIED.exception(
            "upstream " + upstream + " refused the mirror's credentials"));
      }
      basic = true;
      return Future.succeededFuture(header);
    }
    if (challenge == null || !challenge.isBearer() || challenge.param("realm") == null) {
      return Future.failedFuture(OciError.DENIED.exception(
          "upstream " + upstream + " requires authentication the mirror has no credentials for"));
    }
    Token current = byScope.get(scope);
    // A request sent before another one got the token is challenged for lack of it, not because
    // of it: only a token that was itself rejected is replaced.
    if (current != null && !current.header().equals(rejected) && !expired(current)) {
      return Future.succeededFuture(current.header());
    }
    if (current != null) {
      byScope.remove(scope, current);
    }
    return fetches.run(scope, () -> fetch(challenge, scope, own));
  }

  private Future<String> fetch(Challenge challenge, String scope, Credentials credentials) {
    URI realm;
    try {
      realm = URI.create(challenge.param("realm"));
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(unavailable("its token realm is not a URL"));
    }
    if (!HttpUrl.isHttp(realm)) {
      return Future.failedFuture(unavailable("its token realm is not an http(s) URL"));
    }
    StringBuilder url = new StringBuilder(realm.toString());
    char sep = realm.getRawQuery() == null ? '?' : '&';
    String service = challenge.param("service");
    if (service != null) {
      url.append(sep).append("service=").append(encode(service));
      sep = '&';
    }
    url.append(sep).append("scope=").append(encode(scope));
    if (credentials != null) {
      if (!mayReceiveCredentials(realm, origin, tokenRealms)) {
        return Future.failedFuture(unavailable("its token realm " + HttpUrl.origin(realm) + " is not "
            + HttpUrl.origin(origin) + " and not listed in tokenRealms, so it gets no credentials"));
      }
      url.append("&account=").append(encode(credentials.username()));
    }
    long started = System.nanoTime();
    Future<SocketAddress> server = HttpUrl.sameOrigin(realm, origin)
        ? Future.succeededFuture(null) : hosts.address(realm, "its token realm");
    return server
        .compose(address -> {
          RequestOptions options = new RequestOptions()
              .setMethod(HttpMethod.GET)
              .setAbsoluteURI(url.toString())
              .setFollowRedirects(false)
              .setConnectTimeout(timeout.toMillis())
              .setIdleTimeout(timeout.toMillis());
          if (address != null) {
            options.setServer(address);
          }
          if (credentials != null) {
            options.putHeader(HttpHeaders.AUTHORIZATION, credentials.basic());
          }
          return pool.request(options).compose(HttpClientRequest::send);
        })
        .compose(resp -> {
          resp.pause();
          resp.request().idleTimeout(timeout.toMillis());
          UpstreamResponses.endWithin(vertx, resp, timeout, "upstream " + upstream + "'s token service");
          RegistryException refused = null;
          if (resp.statusCode() == 401 || resp.statusCode() == 403) {
            refused = OciError.DENIED.exception("upstream " + upstream + " refused a token for " + scope
                + (credentials == null ? " to anonymous pulls" : " with the mirror's credentials"));
          } else if (resp.statusCode() != 200) {
            refused = unavailable("its token service answered " + resp.statusCode());
          } else if (!MediaTypes.isJson(resp.getHeader(HttpHeaders.CONTENT_TYPE))) {
            refused = unavailable("its token service answered with " + describeType(resp) + ", not JSON");
          }
          if (refused != null) {
            UpstreamResponses.abandon(resp);
            return Future.failedFuture(refused);
          }
          // Read under the memory budget, like every answer read whole.
          return UpstreamResponses.readBody(resp, MAX_ANSWER, OciError.UNAVAILABLE, budget).map(held -> {
            held.lease().release();
            return held.body();
          });
        })
        .map(body -> {
          JsonObject json;
          try {
            json = body.toJsonObject();
          } catch (RuntimeException e) {
            throw unavailable("its token service sent no JSON");
          }
          String token = json.getString("token", json.getString("access_token"));
          if (token == null || token.isEmpty()) {
            throw unavailable("its token service sent no token");
          }
          long lifetime = Math.min(MAX_LIFETIME_SECONDS,
              Math.max(MIN_LIFETIME_SECONDS, json.getLong("expires_in", 0L)));
          // Renew a little early, so that a token never expires between check and use.
          long margin = Math.min(30, lifetime / 5);
          String header = "Bearer " + token;
          // A token got with a password that was rotated meanwhile is used once, never kept.
          if (this.credentials == credentials) {
            byScope.put(scope, new Token(header, started + Duration.ofSeconds(lifetime - margin).toNanos()));
          }
          return header;
        })
        .recover(err -> Future.failedFuture(err instanceof RegistryException
            ? err : unavailable("its token request failed (" + err.getMessage() + ")")));
  }

  /**
   * The upstream's own scheme, host and port, or an https origin the configuration names: the
   * port matters because another port of the same host may be another program, and the scheme
   * because plain http would show the password to the network.
   */
  static boolean mayReceiveCredentials(URI realm, URI upstream, List<URI> tokenRealms) {
    return HttpUrl.sameOrigin(realm, upstream) || HttpUrl.isHttps(realm)
        && tokenRealms.stream().anyMatch(allowed -> HttpUrl.sameOrigin(realm, allowed));
  }

  private static String describeType(HttpClientResponse resp) {
    String type = resp.getHeader(HttpHeaders.CONTENT_TYPE);
    return type == null ? "no content type" : "'" + MediaTypes.bare(type) + "'";
  }


  private RegistryException unavailable(String why) {
    return OciError.UNAVAILABLE.exception("upstream " + upstream + ": " + why);
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
