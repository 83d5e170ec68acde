package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.TestLimits;
import io.registrymirror.testing.TokenServer;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An upstream cannot steer the mirror: what a redirect leads to is checked as the upstream's own
 * answer would be, and redirects end; a listing or a token answer must be JSON of bounded size,
 * and credentials go to the upstream's own origin only. Every host here is on loopback and the upstream too, so the refusals shown are those that
 * hold whatever the address: the address rule itself, and names that do not resolve, are
 * {@code RemoteHostsTest}'s, with a fake resolver (a real lookup would reach a DNS server). Each
 * refused target counts its requests, to show that the mirror never even connected to it.
 */
@Timeout(120)
class UpstreamSteeringTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String SECRET = "internal-data-7f3a";

  private static Image app;

  @BeforeAll
  static void seed() throws Exception {
    app = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 1, 20_000, "docker");
  }

  /**
   * A redirected manifest request is followed (registry.k8s.io redirects them all), and what the
   * other host answers is checked as an answer of the upstream would be: a manifest by digest
   * that does not match is refused and not kept, and so is a tag's that does not match the
   * upstream's Docker-Content-Digest.
   */
  @Test
  void aRedirectedManifestIsCheckedLikeTheUpstreamsOwn(Vertx vertx) {
    AtomicInteger contacted = new AtomicInteger();
    byte[] tampered = new String(app.manifest(), StandardCharsets.UTF_8).replace("\"size\"", "\"size\" ")
        .getBytes(StandardCharsets.UTF_8);
    HttpServer elsewhere = serve(vertx, contacted, r -> r.response()
        .putHeader("Content-Type", DOCKER)
        .putHeader("Docker-Content-Digest", app.manifestDigest())
        .end(Buffer.buffer(tampered)));
    try {
      for (String method : new String[] {"HEAD", "GET"}) {
        upstream.fault(Forwarder.matching(method, ".*/manifests/.*"), Fault.status(307, "",
            Map.of("Location", url(elsewhere) + "/v2/team/app/manifests/1.0")));
      }
      for (String path : new String[] {"/v2/team/app/manifests/" + app.manifestDigest(), "/v2/team/app/manifests/1.0"}) {
        HttpResponse<byte[]> answer = mirror.get(path, "Accept", DOCKER);
        assertThat(answer.statusCode()).as(path).isEqualTo(503);
        assertThat(errorCode(answer)).isEqualTo("UNAVAILABLE");
        assertThat(text(answer)).contains("does not match " + app.manifestDigest());
      }
      assertThat(contacted.get()).isGreaterThanOrEqualTo(2);

      upstream.clearFaults();
      HttpResponse<byte[]> real = mirror.get("/v2/team/app/manifests/" + app.manifestDigest(), "Accept", DOCKER);
      assertThat(real.statusCode()).isEqualTo(200);
      assertThat(real.body()).isEqualTo(app.manifest());
    } finally {
      elsewhere.close().await();
    }
  }

  @Test
  void aRedirectLoopEndsAfterFiveHops(Vertx vertx) {
    AtomicInteger contacted = new AtomicInteger();
    HttpServer elsewhere = serve(vertx, contacted, r -> r.response().setStatusCode(302)
        .putHeader("Location", "/again" + contacted.get()).end());
    try {
      upstream.fault(Forwarder.matching("GET", ".*/tags/list.*"), Fault.status(302, "",
          Map.of("Location", url(elsewhere) + "/start")));
      HttpResponse<byte[]> answer = mirror.get("/v2/team/app/tags/list");
      assertThat(answer.statusCode()).isEqualTo(503);
      assertThat(text(answer)).contains("redirected more than 5 times");
      assertThat(contacted).hasValue(5);
    } finally {
      elsewhere.close().await();
    }
  }

  @Test
  void aRedirectedListingMustStillBeJson(Vertx vertx) {
    AtomicInteger contacted = new AtomicInteger();
    HttpServer elsewhere = serve(vertx, contacted, r -> r.response()
        .putHeader("Content-Type", "text/plain").end("root:x:0:0 " + SECRET));
    try {
      upstream.fault(Forwarder.matching("GET", ".*/tags/list.*"), Fault.status(302, "",
          Map.of("Location", url(elsewhere) + "/admin/tags")));
      upstream.fault(Forwarder.matching("GET", ".*/referrers/.*"), Fault.status(302, "",
          Map.of("Location", url(elsewhere) + "/admin/referrers")));
      for (String path : new String[] {"/v2/team/app/tags/list", "/v2/team/app/referrers/" + app.manifestDigest()}) {
        HttpResponse<byte[]> answer = mirror.get(path);
        assertThat(answer.statusCode()).as(path).isEqualTo(503);
        assertThat(text(answer)).doesNotContain(SECRET).contains("not JSON");
      }
      assertThat(contacted).hasValue(2);
    } finally {
      elsewhere.close().await();
    }
  }

  @Test
  void aListingThatIsNotJsonIsNotPassedOn() {
    HttpResponse<byte[]> real = mirror.get("/v2/team/app/tags/list");
    assertThat(real.statusCode()).isEqualTo(200);
    assertThat(real.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("application/json"));

    for (String endpoint : new String[] {"tags/list", "referrers/" + app.manifestDigest()}) {
      upstream.clearFaults();
      upstream.fault(Forwarder.matching("GET", ".*/" + endpoint + ".*"),
          Fault.status(200, "root:x:0:0 " + SECRET, Map.of("Content-Type", "text/plain")));
      HttpResponse<byte[]> answer = mirror.get("/v2/team/app/" + endpoint);
      assertThat(answer.statusCode()).as(endpoint).isEqualTo(503);
      assertThat(errorCode(answer)).isEqualTo("UNAVAILABLE");
      assertThat(text(answer)).doesNotContain(SECRET).contains("not JSON");
    }
  }

  @Test
  void aBlobRedirectByNameIsFollowed(Vertx vertx) {
    AtomicInteger contacted = new AtomicInteger();
    String layer = app.layerDigests().get(0);
    HttpServer cdn = serve(vertx, contacted, r -> r.response().end(Buffer.buffer(app.blobs().get(layer))));
    try {
      upstream.fault(Forwarder.matching("GET", ".*/blobs/" + layer), Fault.status(307, "",
          Map.of("Location", "http://localhost:" + cdn.actualPort() + "/cdn/" + layer)));
      HttpResponse<byte[]> answer = mirror.get("/v2/team/app/blobs/" + layer);
      assertThat(answer.statusCode()).isEqualTo(200);
      assertThat(answer.body()).isEqualTo(app.blobs().get(layer));
      assertThat(contacted).hasValue(1);
    } finally {
      cdn.close().await();
    }
  }

  @Test
  void aTokenRealmOnAnotherPortGetsNoCredentials(Vertx vertx, @TempDir Path cache) throws Exception {
    String password = "pw-Lq27-never-elsewhere";
    try (TokenServer tokens = TokenServer.start("elsewhere", "issuer");
        LogCapture logs = LogCapture.start()) {
      tokens.requireCredentials("bot", password);
      // Same host as the upstream, another port, plain http: another program, not the upstream.
      challengeManifests("Bearer realm=\"" + tokens.realm() + "\",service=\"elsewhere\"");
      MirrorUnderTest withCredentials = MirrorUnderTest.start(vertx, "local", upstream.url(), cache,
          "username: bot\npassword: " + password);
      try {
        HttpResponse<byte[]> answer = withCredentials.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
        assertThat(answer.statusCode()).isEqualTo(503);
        assertThat(text(answer)).contains("gets no credentials").doesNotContain(password);
      } finally {
        withCredentials.close();
      }
      assertThat(tokens.requests()).isEmpty();
      assertThat(logs.lines()).noneMatch(line -> line.contains(password));
    }
  }

  @Test
  void aTokenAnswerThatIsNotJsonIsRefused(Vertx vertx) {
    AtomicInteger asked = new AtomicInteger();
    HttpServer realm = serve(vertx, asked, r -> r.response().putHeader("Content-Type", "text/html")
        .end(new JsonObject().put("token", "t0k3n").encode()));
    try {
      challengeManifests("Bearer realm=\"" + url(realm) + "/token\",service=\"x\"");
      HttpResponse<byte[]> answer = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
      assertThat(answer.statusCode()).isEqualTo(503);
      assertThat(text(answer)).contains("'text/html', not JSON");
      assertThat(asked).hasValue(1);
    } finally {
      realm.close().await();
    }
  }

  @Test
  void anOversizedTokenAnswerIsRefused(Vertx vertx) {
    AtomicInteger asked = new AtomicInteger();
    String huge = new JsonObject().put("token", "a".repeat(1024 * 1024)).encode();
    HttpServer realm = serve(vertx, asked, r -> r.response().putHeader("Content-Type", "application/json").end(huge));
    try {
      challengeManifests("Bearer realm=\"" + url(realm) + "/token\",service=\"x\"");
      long started = System.nanoTime();
      HttpResponse<byte[]> answer = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
      assertThat(answer.statusCode()).isEqualTo(503);
      assertThat(text(answer)).contains("exceeds 65536 bytes");
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(3));
      assertThat(asked).hasValue(1);
    } finally {
      realm.close().await();
    }
  }

  /**
   * A token answer that drips, a byte every 200 ms, never lets the idle timer fire; the answer
   * must still end within the idle timeout, and the pull with it.
   */
  @Test
  void aTokenAnswerThatDripsEndsWithinTheIdleTimeout(Vertx vertx) {
    AtomicInteger asked = new AtomicInteger();
    byte[] answer = (new JsonObject().put("token", "t0k3n").encode() + " ".repeat(200)).getBytes(StandardCharsets.UTF_8);
    HttpServer realm = serve(vertx, asked, r -> {
      r.response().setChunked(true).putHeader("Content-Type", "application/json");
      AtomicInteger sent = new AtomicInteger();
      vertx.setPeriodic(200, id -> {
        int i = sent.getAndIncrement();
        if (i >= answer.length || r.response().closed()) {
          vertx.cancelTimer(id);
          if (!r.response().closed()) {
            r.response().end();
          }
          return;
        }
        r.response().write(Buffer.buffer(new byte[] {answer[i]}));
      });
    });
    try {
      challengeManifests("Bearer realm=\"" + url(realm) + "/token\",service=\"x\"");
      long started = System.nanoTime();
      HttpResponse<byte[]> pulled = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
      assertThat(pulled.statusCode()).isEqualTo(503);
      assertThat(text(pulled)).contains("token service did not send its whole answer within");
      assertThat(Duration.ofNanos(System.nanoTime() - started))
          .isLessThan(TestLimits.IDLE_TIMEOUT.plusSeconds(3));
      assertThat(asked).hasValue(1);
    } finally {
      realm.close().await();
    }
  }

  /** The upstream's first manifest request of each method meets this challenge; later ones pass. */
  private void challengeManifests(String challenge) {
    for (String method : new String[] {"HEAD", "GET"}) {
      upstream.fault(Forwarder.matching(method, ".*/manifests/.*"),
          Fault.status(401, "", Map.of("WWW-Authenticate", challenge)), 1);
    }
  }

  /** A loopback server that counts its requests: a host the mirror must (or must not) reach. */
  private static HttpServer serve(Vertx vertx, AtomicInteger requests, Consumer<HttpServerRequest> answer) {
    return vertx.createHttpServer().requestHandler(r -> {
      requests.incrementAndGet();
      answer.accept(r);
    }).listen(0, "127.0.0.1").await();
  }

  private static String url(HttpServer server) {
    return "http://127.0.0.1:" + server.actualPort();
  }

  private static String text(HttpResponse<byte[]> answer) {
    return new String(answer.body(), StandardCharsets.UTF_8);
  }

  private static String errorCode(HttpResponse<byte[]> answer) {
    return new JsonObject(Buffer.buffer(answer.body())).getJsonArray("errors").getJsonObject(0).getString("code");
  }
}
