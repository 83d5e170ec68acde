package io.registrymirror.testing;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Stream;

/**
 * A token server of the distribution token auth spec for tests: {@code GET /token?service=…&scope=…}
 * answers anonymous requests with an RS256 JWT that a {@link ReferenceRegistry} started with
 * {@link #auth()} accepts, and records what was asked for.
 *
 * <p>Anonymous callers get {@code pull} at most, as on a public registry: other actions asked for
 * are left out of the grant, which is not an error. The signing key and its self-signed certificate
 * are made at start-up with the JDK's {@code keytool} ({@link TestCertificate}), so no crypto library is needed.
 */
public final class TokenServer implements AutoCloseable {

  private static final String LOOPBACK = "127.0.0.1";
  private static final Set<String> ANONYMOUS_ACTIONS = Set.of("pull");
  private static final long LIFETIME_SECONDS = 300;

  private final Vertx vertx = Vertx.vertx();
  private final Path dir;
  private final String service;
  private final String issuer;
  private final PrivateKey key;
  private final String x5c;
  private final Queue<Request> requests = new ConcurrentLinkedQueue<>();
  private final Set<String> refused = ConcurrentHashMap.newKeySet();
  private volatile int failStatus;
  private volatile String requiredCredentials;
  private HttpServer server;
  private int port;

  /**
   * One token request as received.
   *
   * @param account the {@code account} parameter, null when absent
   * @param user the user of valid Basic credentials, null when the request came anonymously
   */
  public record Request(String service, List<String> scopes, String account, String user) {
  }

  private TokenServer(Path dir, String service, String issuer, PrivateKey key, X509Certificate cert)
      throws GeneralSecurityException {
    this.dir = dir;
    this.service = service;
    this.issuer = issuer;
    this.key = key;
    // x5c holds standard base64 with padding (RFC 7515 §4.1.6), not the URL alphabet of the JWT parts.
    this.x5c = Base64.getEncoder().encodeToString(cert.getEncoded());
  }

  /** Starts a token server for {@code service} on a free loopback port; returns once listening. */
  public static TokenServer start(String service, String issuer) throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("token-server-");
    try {
      TestCertificate signer = TestCertificate.generate(dir, "test token issuer");
      TokenServer server = new TokenServer(dir, service, issuer, signer.key(), signer.cert());
      Files.copy(signer.certPem(), server.rootCertBundle());
      server.listen(0);
      return server;
    } catch (GeneralSecurityException e) {
      delete(dir);
      throw new IllegalStateException("cannot load the generated signing key", e);
    } catch (IOException | InterruptedException | RuntimeException e) {
      delete(dir);
      throw e;
    }
  }

  /** The {@code auth: token} settings under which a registry accepts this server's tokens. */
  public ReferenceRegistry.TokenAuth auth() {
    return new ReferenceRegistry.TokenAuth(realm(), service, issuer, rootCertBundle());
  }

  public String realm() {
    return "http://" + LOOPBACK + ":" + port + "/token";
  }

  /** The PEM certificate that signs every token, for the registry's {@code rootcertbundle}. */
  public Path rootCertBundle() {
    return dir.resolve("root.pem");
  }

  /** Every token request so far, oldest first. */
  public List<Request> requests() {
    return List.copyOf(requests);
  }

  /** Every scope asked for so far, in order of arrival. */
  public List<String> scopes() {
    return requests.stream().flatMap(r -> r.scopes().stream()).toList();
  }

  /** A token good for {@code scope}, as the mirror would get it: for tests that talk to the registry directly. */
  public String issue(String scope) {
    return sign(service, List.of(scope));
  }

  /** Grants no actions on {@code repository} from now on, as a registry does for a private one. */
  public void refuse(String repository) {
    refused.add(repository);
  }

  /**
   * From now on issues tokens only to requests with these Basic credentials, as a private
   * registry's token service does; others get 401.
   */
  public void requireCredentials(String user, String password) {
    requiredCredentials = user + ":" + password;
  }

  /** Answers every token request with {@code status} and no token until {@link #reset()}. */
  public void failWith(int status) {
    failStatus = status;
  }

  /** Stops listening, so that token requests are refused; {@link #resume()} listens on the same port again. */
  public synchronized void stop() {
    if (server != null) {
      server.close().await();
      server = null;
    }
  }

  public synchronized void resume() {
    if (server == null) {
      listen(port);
    }
  }

  /** Forgets requests, refusals and failures, and listens again if stopped. */
  public void reset() {
    requests.clear();
    refused.clear();
    failStatus = 0;
    resume();
  }

  @Override
  public void close() {
    vertx.close().await();
    delete(dir);
  }

  private synchronized void listen(int wanted) {
    server = vertx.createHttpServer(new HttpServerOptions().setHost(LOOPBACK).setPort(wanted))
        .requestHandler(this::handle);
    server.listen().await();
    port = server.actualPort();
  }

  private void handle(HttpServerRequest request) {
    if (!request.path().equals("/token")) {
      request.response().setStatusCode(404).end();
      return;
    }
    String requestedService = request.getParam("service");
    List<String> scopes = request.params().getAll("scope");
    String user = basicUser(request.getHeader(HttpHeaders.AUTHORIZATION));
    requests.add(new Request(requestedService, List.copyOf(scopes), request.getParam("account"), user));
    if (requiredCredentials != null && user == null) {
      request.response().setStatusCode(401)
          .putHeader("WWW-Authenticate", "Basic realm=\"token service\"")
          .end("credentials required");
      return;
    }
    if (failStatus != 0) {
      request.response().setStatusCode(failStatus).end("token service failure");
      return;
    }
    long now = Instant.now().getEpochSecond();
    JsonObject answer = new JsonObject()
        .put("token", sign(requestedService, scopes))
        .put("expires_in", LIFETIME_SECONDS)
        .put("issued_at", Instant.ofEpochSecond(now).toString());
    // Both names, as Docker Hub sends them: clients must accept either.
    answer.put("access_token", answer.getString("token"));
    request.response()
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
        .end(answer.encode());
  }

  /** The user of a Basic header that carries the required credentials; null otherwise. */
  private String basicUser(String authorization) {
    String required = requiredCredentials;
    if (required == null || authorization == null || !authorization.startsWith("Basic ")) {
      return null;
    }
    String given;
    try {
      given = new String(Base64.getDecoder().decode(authorization.substring(6).trim()), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return null;
    }
    return given.equals(required) ? given.substring(0, given.indexOf(':')) : null;
  }

  /**
   * A JWT as distribution 2.8 verifies it: issuer, audience (a single string: 2.8 cannot parse a
   * list), time window, and a signature by the key of the {@code x5c} certificate, which must chain
   * to the registry's {@code rootcertbundle}.
   */
  private String sign(String audience, List<String> scopes) {
    long now = Instant.now().getEpochSecond();
    JsonObject header = new JsonObject()
        .put("typ", "JWT")
        .put("alg", "RS256")
        .put("x5c", new JsonArray().add(x5c));
    JsonObject claims = new JsonObject()
        .put("iss", issuer)
        .put("sub", "")
        .put("aud", audience == null ? "" : audience)
        .put("exp", now + LIFETIME_SECONDS)
        .put("nbf", now)
        .put("iat", now)
        .put("jti", UUID.randomUUID().toString())
        .put("access", access(scopes));
    String signed = base64Url(header.encode()) + "." + base64Url(claims.encode());
    try {
      Signature rsa = Signature.getInstance("SHA256withRSA");
      rsa.initSign(key);
      rsa.update(signed.getBytes(StandardCharsets.US_ASCII));
      return signed + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(rsa.sign());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign a token", e);
    }
  }

  /** The granted access: for each repository scope, the requested actions an anonymous caller may have. */
  private JsonArray access(List<String> scopes) {
    JsonArray access = new JsonArray();
    for (String scope : scopes) {
      // type:name:actions, where the name may itself hold a host:port, so split at the outer colons.
      int first = scope.indexOf(':');
      int last = scope.lastIndexOf(':');
      if (first < 0 || last == first || !scope.substring(0, first).equals("repository")) {
        continue;
      }
      String name = scope.substring(first + 1, last);
      List<String> actions = new ArrayList<>();
      if (!refused.contains(name)) {
        for (String action : scope.substring(last + 1).split(",")) {
          if (ANONYMOUS_ACTIONS.contains(action)) {
            actions.add(action);
          }
        }
      }
      access.add(new JsonObject().put("type", "repository").put("name", name)
          .put("actions", new JsonArray(actions)));
    }
    return access;
  }

  private static String base64Url(String json) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(json.getBytes(StandardCharsets.UTF_8));
  }

  private static void delete(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
