package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.TokenServer;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pulls through the mirror from the reference registry with token auth, as Docker Hub demands it:
 * the mirror answers the challenge anonymously with one token per repository, its clients never
 * see an auth challenge, a failing token service is an outage rather than a hang, and a token
 * never follows a redirect to another host.
 */
@Timeout(120)
class UpstreamAuthTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String SERVICE = "reference-registry";
  /** Far below the mirror's 5 s idle timeout: a failure must not be found by waiting it out. */
  private static final Duration QUICK = Duration.ofSeconds(3);

  private static TokenServer tokens;
  private static Image app;
  private static Image tools;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** Seeds while the registry is open, since anonymous tokens grant no push; then it demands tokens. */
  @BeforeAll
  static void seedAndRequireTokens() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    app = seeder.pushImage("team/app", "1.0", 3, 200_000, "docker");
    tools = seeder.pushImage("team/tools", "2.0", 2, 50_000, "docker");
    tokens = TokenServer.start(SERVICE, "token-issuer");
    registry.restart(tokens.auth());
  }

  @AfterAll
  static void stopTokens() {
    if (tokens != null) {
      tokens.close();
      tokens = null;
    }
  }

  @AfterEach
  void resetTokens() {
    tokens.reset();
  }

  @Test
  void registryDemandsAValidTokenForTheRepository() throws Exception {
    String manifest = registry.url() + "/v2/team/app/manifests/1.0";

    HttpResponse<String> anonymous = direct(manifest, null);
    assertThat(anonymous.statusCode()).isEqualTo(401);
    assertThat(anonymous.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"" + tokens.realm()
        + "\",service=\"" + SERVICE + "\",scope=\"repository:team/app:pull\"");

    assertThat(direct(manifest, tokens.issue("repository:team/app:pull")).statusCode()).isEqualTo(200);
    // A token is good for the repository it names only.
    assertThat(direct(manifest, tokens.issue("repository:team/tools:pull")).statusCode()).isEqualTo(401);
  }

  @Test
  void coldPullFetchesOneTokenPerRepositoryAndReturnsThePushedBytes() {
    List<HttpResponse<byte[]>> answers = new ArrayList<>();
    answers.addAll(pull(app));
    answers.addAll(pull(tools));

    for (HttpResponse<byte[]> answer : answers) {
      assertThat(answer.statusCode()).as(answer.request().uri().toString()).isEqualTo(200);
      assertThat(answer.headers().firstValue("WWW-Authenticate")).isEmpty();
    }
    assertThat(tokens.requests()).extracting(TokenServer.Request::service).containsOnly(SERVICE);
    assertThat(tokens.scopes()).containsExactly("repository:team/app:pull", "repository:team/tools:pull");

    // Only each repository's first request met a challenge; every other one carried its token.
    List<Seen> seen = upstream.seen();
    assertThat(seen).filteredOn(s -> s.status() == 401).hasSize(2);
    List<Seen> authorized = seen.stream().filter(s -> s.status() != 401).toList();
    assertThat(authorized).allSatisfy(s -> assertThat(s.headers().get("Authorization")).startsWith("Bearer "));
    assertThat(authorized.stream().map(s -> s.headers().get("Authorization")).distinct()).hasSize(2);
  }

  @Test
  void concurrentColdRequestsShareOneToken() {
    List<String> paths = new ArrayList<>();
    paths.add("/v2/team/app/manifests/" + app.manifestDigest());
    app.blobs().keySet().forEach(digest -> paths.add("/v2/team/app/blobs/" + digest));
    List<CompletableFuture<HttpResponse<byte[]>>> answers = paths.stream().map(this::getAsync).toList();

    assertThat(answers).allSatisfy(answer -> assertThat(answer.join().statusCode()).isEqualTo(200));
    assertThat(tokens.scopes()).containsExactly("repository:team/app:pull");
  }

  @Test
  void aLateChallengeToARequestSentWithoutTheTokenReusesIt() {
    String layer = app.layerDigests().get(0);
    upstream.fault(Forwarder.matching("GET", ".*/blobs/" + layer), Fault.delayHeaders(Duration.ofMillis(500)), 1);
    CompletableFuture<HttpResponse<byte[]>> slow = getAsync("/v2/team/app/blobs/" + layer);
    MirrorUnderTest.eventually(Duration.ofSeconds(5), () -> upstream.arrived("GET", ".*/blobs/" + layer) == 1,
        "the blob request to reach upstream");

    // This request meets its challenge and gets the token while the blob request is still held.
    assertThat(mirror.get("/v2/team/app/manifests/" + app.manifestDigest(), "Accept", DOCKER).statusCode())
        .isEqualTo(200);
    HttpResponse<byte[]> blob = slow.join();

    assertThat(blob.statusCode()).isEqualTo(200);
    assertThat(blob.body()).isEqualTo(app.blobs().get(layer));
    // The blob request's challenge was to no token at all: the token now held answers it.
    assertThat(tokens.scopes()).containsExactly("repository:team/app:pull");
  }

  @Test
  void refusedAccessIsDeniedWithoutAChallengeToTheClient() {
    tokens.refuse("team/app");

    HttpResponse<byte[]> manifest = mirror.get("/v2/team/app/manifests/" + app.manifestDigest(), "Accept", DOCKER);
    HttpResponse<byte[]> blob = mirror.get("/v2/team/app/blobs/" + app.configDigest());

    // The registry answered 401 even with a token; a 401 from the mirror would make clients try
    // credentials on it, so the mirror's answer is a denial.
    for (HttpResponse<byte[]> answer : List.of(manifest, blob)) {
      assertThat(answer.statusCode()).isEqualTo(403);
      assertThat(errorCode(answer)).isEqualTo("DENIED");
      assertThat(answer.headers().firstValue("WWW-Authenticate")).isEmpty();
    }
    assertThat(upstream.seen()).filteredOn(s -> s.status() == 401).isNotEmpty();
  }

  @Test
  void tokenServiceFailureIsUnavailableQuickly() {
    tokens.failWith(500);
    assertUnavailableQuickly();
    assertThat(tokens.requests()).isNotEmpty();
  }

  @Test
  void tokenServiceDownIsUnavailableQuicklyAndRecovers() {
    tokens.stop();
    assertUnavailableQuickly();

    // No failure is remembered: once tokens are issued again, the same mirror pulls.
    tokens.resume();
    assertThat(pull(app)).allSatisfy(answer -> assertThat(answer.statusCode()).isEqualTo(200));
    assertThat(tokens.scopes()).containsExactly("repository:team/app:pull");
  }

  @Test
  void redirectToAnotherHostCarriesNoToken(Vertx vertx) {
    Queue<MultiMap> cdnRequests = new ConcurrentLinkedQueue<>();
    HttpServer cdn = vertx.createHttpServer().requestHandler(request -> {
      cdnRequests.add(MultiMap.caseInsensitiveMultiMap().addAll(request.headers()));
      byte[] bytes = app.blobs().get(request.path().substring("/cdn/".length()));
      if (bytes == null) {
        request.response().setStatusCode(404).end();
      } else {
        request.response().end(Buffer.buffer(bytes));
      }
    });
    cdn.listen(0, "127.0.0.1").await();
    try {
      for (String digest : app.blobs().keySet()) {
        upstream.fault(Forwarder.matching("GET", ".*/blobs/" + digest), Fault.status(307, "",
            Map.of("Location", "http://127.0.0.1:" + cdn.actualPort() + "/cdn/" + digest + "?expires=60")));
      }
      // The manifest fetch meets the challenge, so the blob requests already carry a token.
      assertThat(mirror.get("/v2/team/app/manifests/" + app.manifestDigest(), "Accept", DOCKER).statusCode())
          .isEqualTo(200);

      for (var blob : app.blobs().entrySet()) {
        HttpResponse<byte[]> got = mirror.get("/v2/team/app/blobs/" + blob.getKey());
        assertThat(got.statusCode()).isEqualTo(200);
        assertThat(got.body()).isEqualTo(blob.getValue());
      }

      List<Seen> redirected = upstream.seen().stream().filter(s -> s.uri().contains("/blobs/")).toList();
      assertThat(redirected).hasSize(app.blobs().size()).allSatisfy(s -> {
        assertThat(s.status()).isEqualTo(307);
        assertThat(s.headers().get("Authorization")).startsWith("Bearer ");
      });
      assertThat(cdnRequests).hasSize(app.blobs().size())
          .allSatisfy(headers -> assertThat(headers.contains("Authorization")).isFalse());
    } finally {
      cdn.close().await();
    }
  }

  @Test
  void redirectWithinTheUpstreamKeepsTheToken() {
    String layer = app.layerDigests().get(0);
    upstream.fault(Forwarder.matching("GET", ".*/blobs/" + layer), Fault.status(307, "",
        Map.of("Location", "/v2/team/app/blobs/" + layer + "?moved=1")));
    assertThat(mirror.get("/v2/team/app/manifests/" + app.manifestDigest(), "Accept", DOCKER).statusCode())
        .isEqualTo(200);

    HttpResponse<byte[]> got = mirror.get("/v2/team/app/blobs/" + layer);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEqualTo(app.blobs().get(layer));
    // The registry itself answered the moved request, so it must have had the token without a new challenge.
    assertThat(upstream.seen()).filteredOn(s -> s.uri().endsWith("?moved=1")).singleElement()
        .satisfies(s -> {
          assertThat(s.status()).isEqualTo(200);
          assertThat(s.headers().get("Authorization")).startsWith("Bearer ");
        });
    assertThat(tokens.requests()).hasSize(1);
  }

  /** Every kind of upstream request fails fast with UNAVAILABLE, never with a challenge. */
  private void assertUnavailableQuickly() {
    List<String> paths = List.of(
        "/v2/team/app/manifests/1.0",
        "/v2/team/app/manifests/" + app.manifestDigest(),
        "/v2/team/app/blobs/" + app.configDigest());
    for (String path : paths) {
      long started = System.nanoTime();
      HttpResponse<byte[]> answer = mirror.get(path, "Accept", DOCKER);
      Duration took = Duration.ofNanos(System.nanoTime() - started);
      assertThat(answer.statusCode()).as(path).isEqualTo(503);
      assertThat(errorCode(answer)).as(path).isEqualTo("UNAVAILABLE");
      assertThat(answer.headers().firstValue("WWW-Authenticate")).as(path).isEmpty();
      assertThat(took).as(path).isLessThan(QUICK);
    }
  }

  /** What containerd does: HEAD and GET the tag, GET the manifest by digest, then every blob. */
  private List<HttpResponse<byte[]>> pull(Image image) {
    String base = "/v2/" + image.repo();
    List<HttpResponse<byte[]>> answers = new ArrayList<>();
    HttpResponse<byte[]> head = mirror.head(base + "/manifests/" + image.tag(), "Accept", DOCKER);
    assertThat(head.headers().firstValue("Docker-Content-Digest")).hasValue(image.manifestDigest());
    answers.add(head);
    HttpResponse<byte[]> byTag = mirror.get(base + "/manifests/" + image.tag(), "Accept", DOCKER);
    assertThat(byTag.body()).isEqualTo(image.manifest());
    answers.add(byTag);
    HttpResponse<byte[]> byDigest = mirror.get(base + "/manifests/" + image.manifestDigest(), "Accept", DOCKER);
    assertThat(byDigest.body()).isEqualTo(image.manifest());
    answers.add(byDigest);
    for (var blob : image.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get(base + "/blobs/" + blob.getKey());
      assertThat(got.body()).isEqualTo(blob.getValue());
      answers.add(got);
    }
    return answers;
  }

  /** A GET from the mirror on a connection of its own, so that requests reach it on several event loops. */
  private CompletableFuture<HttpResponse<byte[]>> getAsync(String path) {
    return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().sendAsync(
        HttpRequest.newBuilder(URI.create(mirror.url() + path)).header("Accept", DOCKER).build(),
        BodyHandlers.ofByteArray());
  }

  private HttpResponse<String> direct(String url, String token) throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).header("Accept", DOCKER);
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    return http.send(request.build(), BodyHandlers.ofString());
  }

  private static String errorCode(HttpResponse<byte[]> answer) {
    return new JsonObject(Buffer.buffer(answer.body())).getJsonArray("errors").getJsonObject(0).getString("code");
  }
}
