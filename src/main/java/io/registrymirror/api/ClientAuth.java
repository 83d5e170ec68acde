package io.registrymirror.api;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.registrymirror.config.ConfigException;
import io.registrymirror.config.Htpasswd;
import io.registrymirror.config.LimitsConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.log.EventLog;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * Basic authentication of clients against htpasswd bcrypt entries, for the whole registry API,
 * the version check included: that 401 is how clients learn that they must log in.
 *
 * <p>bcrypt is slow on purpose, and a flood of wrong passwords must neither stall real users nor
 * take the event loops, so checks run on a small pool of their own behind a bounded queue, each
 * client address may fail only so often before it is told to wait, and a pull of many layers
 * costs one check, not one per request: successes are remembered for a while under a keyed hash
 * of the header (never the header itself). An unknown user costs a check against a dummy hash of the
 * same cost, so that the time of the answer does not tell which users exist.
 *
 * <p>The file is read again when it changes (Kubernetes swaps a Secret's files by a symlink, which
 * file watches miss, so its content is polled); a broken new file keeps the old users.
 */
final class ClientAuth implements Handler<RoutingContext> {

  private static final EventLog LOG = EventLog.of(ClientAuth.class);
  private static final String CHALLENGE = "Basic realm=\"registry-mirror\"";
  /** How long a successful check is remembered. */
  private static final Duration REMEMBER = Duration.ofMinutes(5);
  /** How often the htpasswd file is read to see whether it changed. */
  static final Duration RELOAD_CHECK = Duration.ofSeconds(2);
  /** Checks that may wait for a thread, per thread, before new ones are refused. */
  private static final int QUEUED_PER_THREAD = 16;

  /**
   * The users, with a hash of their highest cost to check unknown users against, made on the
   * first check that needs it (on a worker: it costs as much as a check).
   */
  private record Users(Htpasswd file, AtomicReference<String> dummy) {

    Users(Htpasswd file) {
      this(file, new AtomicReference<>());
    }

    String dummyHash() {
      return dummy.updateAndGet(d -> d != null ? d : BCrypt.hashpw(randomPassword(), BCrypt.gensalt(file.cost())));
    }
  }

  /** A remembered success: valid while the user's hash is the one it was checked against. */
  private record Passed(String user, String hash) {}

  private final Vertx vertx;
  private final LimitsConfig limits;
  private final byte[] secret = new byte[32];
  private final WorkerExecutor checker;
  private final int maxQueued;
  private final AtomicInteger queued = new AtomicInteger();
  private final Cache<String, Passed> passed = Caffeine.newBuilder()
      .maximumSize(10_000)
      .expireAfterWrite(REMEMBER)
      .build();
  /** Failed logins per client address, counted from the first one in the window. */
  private final Cache<String, AtomicInteger> failures;
  private final long reloadTimer;
  private volatile Users users;
  private String rejected;

  ClientAuth(Vertx vertx, Htpasswd htpasswd, LimitsConfig limits) {
    this.vertx = vertx;
    this.limits = limits;
    int threads = Math.max(2, Runtime.getRuntime().availableProcessors() / 2);
    this.checker = vertx.createSharedWorkerExecutor("registry-mirror-client-auth", threads);
    this.maxQueued = threads * QUEUED_PER_THREAD;
    this.failures = Caffeine.newBuilder()
        .maximumSize(100_000)
        .expireAfterWrite(limits.loginFailureWindow())
        .build();
    this.users = new Users(htpasswd);
    new SecureRandom().nextBytes(secret);
    this.reloadTimer = vertx.setPeriodic(RELOAD_CHECK.toMillis(), t -> reload());
  }

  void close() {
    vertx.cancelTimer(reloadTimer);
    checker.close();
  }

  @Override
  public void handle(RoutingContext ctx) {
    String header = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    if (header == null || !header.regionMatches(true, 0, "Basic ", 0, 6)) {
      ctx.fail(unauthorized("authentication required"));
      return;
    }
    String key = rememberKey(header);
    Passed known = passed.getIfPresent(key);
    if (known != null && known.hash().equals(users.file().hashes().get(known.user()))) {
      ctx.next();
      return;
    }
    AtomicInteger failed = failures.get(clientAddress(ctx), a -> new AtomicInteger());
    if (failed.get() >= limits.loginFailures()) {
      ctx.fail(tooMany("too many failed logins from this address", limits.loginFailureWindow().toSeconds()));
      return;
    }
    if (queued.incrementAndGet() > maxQueued) {
      queued.decrementAndGet();
      ctx.fail(tooMany("too many logins at once", 1));
      return;
    }
    // Counted before the check, so that a burst of concurrent guesses is limited as well.
    failed.incrementAndGet();
    Users checking = users;
    checker.executeBlocking(() -> check(checking, header), false).onComplete(checked -> {
      queued.decrementAndGet();
      Passed ok = checked.succeeded() ? checked.result() : null;
      if (ok == null) {
        ctx.fail(unauthorized("wrong user name or password"));
        return;
      }
      failed.decrementAndGet();
      passed.put(key, ok);
      ctx.next();
    });
  }

  /** The user the header names, when its password is right; null otherwise. */
  private static Passed check(Users users, String header) {
    String given;
    try {
      given = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      given = "";
    }
    int colon = given.indexOf(':');
    String user = colon < 0 ? null : given.substring(0, colon);
    String hash = user == null ? null : users.file().hashes().get(user);
    String password = colon < 0 ? given : given.substring(colon + 1);
    try {
      // The same work whether or not the user exists.
      boolean matches = BCrypt.checkpw(password, hash == null ? users.dummyHash() : hash);
      return matches && hash != null ? new Passed(user, hash) : null;
    } catch (IllegalArgumentException e) {
      LOG.warn("auth.htpasswd.invalid", "file", users.file().file(), "user", user);
      return null;
    }
  }

  /** Reads the file on a worker and takes its users if it changed and is valid. */
  private void reload() {
    Users current = users;
    vertx.executeBlocking(() -> {
      Htpasswd read = Htpasswd.parse("auth.htpasswd", current.file().file(),
          Files.readString(current.file().file(), StandardCharsets.UTF_8));
      return read.hashes().equals(current.file().hashes()) ? current : new Users(read);
    }, false).onComplete(read -> {
      if (read.failed()) {
        String why = read.cause() instanceof ConfigException e ? e.getMessage() : "cannot read the file ("
            + read.cause().getClass().getSimpleName() + ")";
        // Once per reason: a file that stays broken would otherwise log every few seconds.
        if (!why.equals(rejected)) {
          rejected = why;
          LOG.warn("auth.htpasswd.rejected", "file", current.file().file(), "error", why,
              "users", current.file().hashes().size());
        }
        return;
      }
      rejected = null;
      Users next = read.result();
      if (next == current || users != current) {
        return;
      }
      users = next;
      // Successes of users who were removed or whose password changed no longer count.
      passed.asMap().values().removeIf(p -> !p.hash().equals(next.file().hashes().get(p.user())));
      LOG.info("auth.htpasswd.reloaded", "file", next.file().file(), "users", next.file().hashes().size());
    });
  }

  private static String randomPassword() {
    byte[] random = new byte[16];
    new SecureRandom().nextBytes(random);
    return HexFormat.of().formatHex(random);
  }

  private static String clientAddress(RoutingContext ctx) {
    SocketAddress remote = ctx.request().remoteAddress();
    return remote == null ? "" : Objects.requireNonNullElse(remote.hostAddress(), remote.host());
  }

  /**
   * The key a success is remembered under: an HMAC with a key made at start-up, so that what
   * stays in memory is neither the credentials nor a plain hash to try passwords against.
   */
  private String rememberKey(String header) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      return HexFormat.of().formatHex(mac.doFinal(header.getBytes(StandardCharsets.UTF_8)));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static RegistryException unauthorized(String why) {
    return OciError.UNAUTHORIZED.exception(why).withHeader("WWW-Authenticate", CHALLENGE);
  }

  private static RegistryException tooMany(String why, long retryAfterSeconds) {
    return OciError.TOOMANYREQUESTS.exception(why).withHeader("Retry-After", Long.toString(retryAfterSeconds));
  }
}
