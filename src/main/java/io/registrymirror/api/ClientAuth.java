package io.registrymirror.api;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.registrymirror.config.Htpasswd;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.metrics.EventLog;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.RoutingContext;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * Basic authentication of clients against htpasswd bcrypt entries, for the whole registry API,
 * the version check included: that 401 is how clients learn that they must log in.
 *
 * <p>bcrypt is slow on purpose, so checks run on one worker thread of their own, where a flood
 * of wrong passwords cannot take the event loops or more than one core, and outcomes are kept
 * for a while, keyed by the header: a pull of many layers costs one check, not one per request.
 */
final class ClientAuth implements Handler<RoutingContext> {

  private static final EventLog LOG = EventLog.of(ClientAuth.class);
  private static final String CHALLENGE = "Basic realm=\"registry-mirror\"";

  private final Htpasswd users;
  private final WorkerExecutor checker;
  private final Cache<String, Boolean> outcomes = Caffeine.newBuilder()
      .maximumSize(10_000)
      .expireAfterWrite(Duration.ofMinutes(5))
      .build();

  ClientAuth(Vertx vertx, Htpasswd users) {
    this.users = users;
    this.checker = vertx.createSharedWorkerExecutor("registry-mirror-client-auth", 1);
  }

  @Override
  public void handle(RoutingContext ctx) {
    String header = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    if (header == null || !header.regionMatches(true, 0, "Basic ", 0, 6)) {
      ctx.fail(unauthorized("authentication required"));
      return;
    }
    Boolean known = outcomes.getIfPresent(header);
    if (known != null) {
      pass(ctx, known);
      return;
    }
    checker.executeBlocking(() -> check(header), false).onComplete(checked -> {
      boolean ok = checked.succeeded() && checked.result();
      outcomes.put(header, ok);
      pass(ctx, ok);
    });
  }

  private void pass(RoutingContext ctx, boolean ok) {
    if (ok) {
      ctx.next();
    } else {
      ctx.fail(unauthorized("wrong user name or password"));
    }
  }

  private boolean check(String header) {
    String given;
    try {
      given = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return false;
    }
    int colon = given.indexOf(':');
    String hash = colon < 0 ? null : users.hashes().get(given.substring(0, colon));
    if (hash == null) {
      return false;
    }
    try {
      return BCrypt.checkpw(given.substring(colon + 1), hash);
    } catch (IllegalArgumentException e) {
      LOG.warn("auth.htpasswd.invalid", "file", users.file(), "user", given.substring(0, colon));
      return false;
    }
  }

  private static RegistryException unauthorized(String why) {
    return OciError.UNAUTHORIZED.exception(why).withHeader("WWW-Authenticate", CHALLENGE);
  }
}
