package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.SharedOrigin;
import io.registrymirror.testing.TokenServer;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A private registry behind a token service that issues tokens only for the right credentials,
 * the way ghcr.io, quay.io or a Harbor project does for private images: the mirror fetches its
 * tokens with its own user, the real registry checks them, and a wrong password is refused
 * without the password ever showing in a response or a log line.
 */
@Timeout(120)
class TokenCredentialsTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String USER = "mirror-bot";
  private static final String PASSWORD = "pw-Zq81-token-secret";

  private static TokenServer tokens;
  private static SharedOrigin origin;
  private static Image app;

  /** The token service shares the registry's origin: only there do the credentials go. */
  @BeforeAll
  static void seedAndRequireCredentials() throws Exception {
    app = new ImageSeeder(registry.url()).pushImage("private/app", "1.0", 2, 100_000, "docker");
    tokens = TokenServer.start("private-registry", "token-issuer");
    tokens.requireCredentials(USER, PASSWORD);
    origin = SharedOrigin.start(tokens.realm());
    registry.restart(origin.auth(tokens));
  }

  @AfterAll
  static void stopTokens() {
    if (tokens != null) {
      tokens.close();
      origin.close();
      tokens = null;
    }
  }

  @Override
  protected String upstreamUrl() {
    origin.registry(upstream.port());
    return origin.url();
  }

  @AfterEach
  void resetTokens() {
    tokens.reset();
  }

  @Override
  protected String upstreamYaml() {
    return "username: " + USER + "\npassword: " + PASSWORD;
  }

  @Test
  void tokensAreFetchedWithTheMirrorsCredentials() {
    HttpResponse<byte[]> manifest = mirror.get("/v2/private/app/manifests/1.0", "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(app.manifest());
    for (var blob : app.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get("/v2/private/app/blobs/" + blob.getKey());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(blob.getValue());
    }
    assertThat(tokens.requests()).isNotEmpty().allSatisfy(r -> {
      assertThat(r.user()).isEqualTo(USER);
      assertThat(r.account()).isEqualTo(USER);
    });
    // The registry got bearer tokens, never the password itself.
    assertThat(upstream.seen()).allSatisfy(s -> {
      String authorization = s.headers().get("Authorization");
      assertThat(authorization == null || authorization.startsWith("Bearer ")).isTrue();
    });
  }

  @Test
  void aWrongPasswordIsDeniedAndNeverShown(Vertx vertx, @TempDir Path cache) {
    String wrong = "pw-wrong-Kx93-secret";
    try (LogCapture logs = LogCapture.start()) {
      MirrorUnderTest misconfigured = MirrorUnderTest.start(vertx, "local", upstreamUrl(), cache,
          "username: " + USER + "\npassword: " + wrong);
      try {
        for (String path : new String[] {"/v2/private/app/manifests/1.0",
            "/v2/private/app/blobs/" + app.configDigest()}) {
          HttpResponse<byte[]> answer = misconfigured.get(path, "Accept", DOCKER);
          assertThat(answer.statusCode()).as(path).isEqualTo(403);
          String body = new String(answer.body(), StandardCharsets.UTF_8);
          assertThat(body).contains("DENIED").doesNotContain(wrong);
          assertThat(answer.headers().map().toString()).doesNotContain(wrong);
        }
      } finally {
        misconfigured.close();
      }
      assertThat(tokens.requests()).isNotEmpty().allSatisfy(r -> assertThat(r.user()).isNull());
      String basic = Base64.getEncoder().encodeToString((USER + ":" + wrong).getBytes(StandardCharsets.UTF_8));
      assertThat(logs.lines()).isNotEmpty()
          .noneMatch(line -> line.contains(wrong) || line.contains(PASSWORD) || line.contains(basic));
    }
  }
}
