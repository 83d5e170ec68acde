package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.vertx.core.Future;
import io.registrymirror.config.Credentials;
import io.registrymirror.config.UpstreamConfig;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Answers an upstream's challenges. For Bearer, the token flow of the distribution auth spec:
 * fetch a token for the scope from the realm, anonymously or with the upstream's credentials,
 * and keep it per scope until shortly before it expires, so that most upstream requests carry a
 * valid token and cost no extra round trip. For Basic, the credentials themselves, sent with
 * every request once the upstream has asked for them.
 *
 * <p>Credentials never appear in an error message: they are only ever put in headers.
 */
final class Authenticator {

  /** Tokens without {@code expires_in} last 60 s, and clients treat anything shorter as 60 s. */
  private static final long MIN_LIFETIME_SECONDS = 60;

  /** A token is renewed at least daily, whatever lifetime it claims. */
  private static final long MAX_LIFETIME_SECONDS = 24 * 3600;

  private record Token(String header, long expiresAtNanos) {}

  private final HttpClient http;
  private final String upstream;
  private final String host;
  private final Credentials credentials;
  private final Duration timeout;
  private final Map<String, Token> byScope = new ConcurrentHashMap<>();
  private final SingleFlight<String, String> fetches = new SingleFlight<>();
  private volatile boolean basic;

  Authenticator(HttpClient http, UpstreamConfig config) {
    this.http = http;
    this.upstream = config.name();
    this.host = config.url().getHost();
    this.credentials = config.credentials();
    this.timeout = config.idleTimeout();
  }

  /** A still-valid {@code Authorization} value for the scope, or null. */
  String cached(String scope) {
    if (basic) {
      return credentials.basic();
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
    if (challenge != null && challenge.isBasic() && credentials != null) {
      String header = credentials.basic();
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
    return fetches.run(scope, () -> fetch(challenge, scope));
  }

  private Future<String> fetch(Challenge challenge, String scope) {
    URI realm;
    try {
      realm = URI.create(challenge.param("realm"));
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(unavailable("its token realm is not a URL"));
    }
    if (!"https".equals(realm.getScheme()) && !"http".equals(realm.getScheme())) {
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
      if (!"https".equals(realm.getScheme()) && !host.equalsIgnoreCase(realm.getHost())) {
        return Future.failedFuture(unavailable("its token realm is another host over plain http, "
            + "where the mirror does not send credentials"));
      }
      url.append("&account=").append(encode(credentials.username()));
    }
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.GET)
        .setAbsoluteURI(url.toString())
        .setIdleTimeout(timeout.toMillis())
        .setConnectTimeout(timeout.toMillis())
        .setFollowRedirects(false);
    if (credentials != null) {
      options.putHeader(HttpHeaders.AUTHORIZATION, credentials.basic());
    }
    long started = System.nanoTime();
    return http.request(options)
        .compose(req -> req.send())
        .compose(resp -> {
          // Bounds the body too, not only the headers: a token fetch is shared by every pull
          // of the repository.
          resp.request().idleTimeout(timeout.toMillis());
          return resp.body().map(body -> {
            if (resp.statusCode() == 401 || resp.statusCode() == 403) {
              throw OciError.DENIED.exception("upstream " + upstream + " refused a token for " + scope
                  + (credentials == null ? " to anonymous pulls" : " with the mirror's credentials"));
            }
            if (resp.statusCode() != 200) {
              throw unavailable("its token service answered " + resp.statusCode());
            }
            return body;
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
          byScope.put(scope, new Token(header,
              started + Duration.ofSeconds(lifetime - margin).toNanos()));
          return header;
        })
        .recover(err -> Future.failedFuture(err instanceof RegistryException
            ? err : unavailable("its token service is unreachable (" + err.getMessage() + ")")));
  }

  private RegistryException unavailable(String why) {
    return OciError.UNAVAILABLE.exception("upstream " + upstream + ": " + why);
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
