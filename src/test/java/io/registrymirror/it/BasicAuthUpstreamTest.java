package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.ReferenceRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * A private registry with htpasswd Basic auth (bcrypt entries), checked by the real reference
 * registry: the mirror answers the Basic challenge with its credentials, then sends them with
 * every request to that registry, and never to another host a blob is redirected to.
 */
@Timeout(120)
class BasicAuthUpstreamTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String USER = "puller";
  private static final String PASSWORD = "pw-basic-7hQ2";

  @TempDir
  static Path files;
  private static Image app;

  @BeforeAll
  static void seedAndRequireBasicAuth() throws Exception {
    app = new ImageSeeder(registry.url()).pushImage("private/base", "3.1", 2, 80_000, "docker");
    Path htpasswd = files.resolve("htpasswd");
    Files.writeString(htpasswd, USER + ":" + BCrypt.hashpw(PASSWORD, BCrypt.gensalt(5)) + "\n");
    registry.restart(new ReferenceRegistry.HtpasswdAuth("private registry", htpasswd));
  }

  @Override
  protected String upstreamYaml() {
    return "username: " + USER + "\npassword: " + PASSWORD;
  }

  @Test
  void registryRefusesAnonymousPulls() throws Exception {
    HttpResponse<Void> anonymous = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(registry.url() + "/v2/private/base/manifests/3.1")).build(),
        BodyHandlers.discarding());
    assertThat(anonymous.statusCode()).isEqualTo(401);
    assertThat(anonymous.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(
        challenge -> assertThat(challenge).startsWith("Basic "));
  }

  @Test
  void pullsWithTheCredentialsAfterOneChallenge() {
    HttpResponse<byte[]> manifest = mirror.get("/v2/private/base/manifests/3.1", "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(app.manifest());
    for (var blob : app.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get("/v2/private/base/blobs/" + blob.getKey());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(blob.getValue());
    }
    List<Seen> seen = upstream.seen();
    assertThat(seen.get(0).status()).isEqualTo(401);
    assertThat(seen.subList(1, seen.size())).isNotEmpty().allSatisfy(s -> {
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("Authorization")).isEqualTo(basic(USER, PASSWORD));
    });
  }

  @Test
  void withoutCredentialsTheClientIsDenied(Vertx vertx, @TempDir Path cache) {
    MirrorUnderTest anonymous = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "");
    try {
      HttpResponse<byte[]> answer = anonymous.get("/v2/private/base/manifests/3.1", "Accept", DOCKER);
      assertThat(answer.statusCode()).isEqualTo(403);
      assertThat(new String(answer.body(), StandardCharsets.UTF_8)).contains("DENIED");
      assertThat(answer.headers().firstValue("WWW-Authenticate")).isEmpty();
    } finally {
      anonymous.close();
    }
  }

  @Test
  void aRedirectToAnotherHostCarriesNoCredentials(Vertx vertx) {
    Queue<MultiMap> cdnRequests = new ConcurrentLinkedQueue<>();
    HttpServer cdn = vertx.createHttpServer().requestHandler(request -> {
      cdnRequests.add(MultiMap.caseInsensitiveMultiMap().addAll(request.headers()));
      request.response().end(Buffer.buffer(app.blobs().get(request.path().substring("/cdn/".length()))));
    });
    cdn.listen(0, "127.0.0.1").await();
    try {
      String layer = app.layerDigests().get(0);
      // "localhost" is another host than the upstream's 127.0.0.1, as far as credentials go.
      upstream.fault(Forwarder.matching("GET", ".*/blobs/" + layer), Fault.status(307, "",
          Map.of("Location", "http://localhost:" + cdn.actualPort() + "/cdn/" + layer)));
      assertThat(mirror.get("/v2/private/base/manifests/3.1", "Accept", DOCKER).statusCode()).isEqualTo(200);

      HttpResponse<byte[]> got = mirror.get("/v2/private/base/blobs/" + layer);
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(app.blobs().get(layer));
      assertThat(upstream.seen()).filteredOn(s -> s.uri().contains("/blobs/")).singleElement()
          .satisfies(s -> assertThat(s.headers().get("Authorization")).isEqualTo(basic(USER, PASSWORD)));
      assertThat(cdnRequests).singleElement()
          .satisfies(headers -> assertThat(headers.contains("Authorization")).isFalse());
    } finally {
      cdn.close().await();
    }
  }

  private static String basic(String user, String password) {
    return "Basic " + java.util.Base64.getEncoder()
        .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }
}
