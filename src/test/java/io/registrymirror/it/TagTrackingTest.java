package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tags as moving targets, against the real registry: TTLs follow tag patterns; a pinned tag keeps
 * serving its digest while its moves are still reported; the tag API lists and filters; a move
 * warms the cache with the new image; webhooks are retried, also when a receiver's answer
 * drips; the history is bounded, and unpulled tags are forgotten while the history of the
 * others outlives a restart.
 */
@Timeout(120)
class TagTrackingTest extends TagTestBase {

  private static final String OCI_INDEX = ImageSeeder.OCI_INDEX;

  @Test
  void ttlsFollowTagPatterns(Vertx vertx, @TempDir Path cache) throws Exception {
    seeder.pushImage("patterns/app", "2.1.0", 1, 10_000, "docker");
    seeder.pushImage("patterns/app", "main-dev", 1, 10_000, "docker");
    // The upstream's TTL is long; tags ending in -dev are revalidated on every pull.
    MirrorUnderTest m = tracking(vertx, cache, "1h", "0s", "{tags: \"*-dev\", ttl: 0s}", "");
    try {
      for (int i = 0; i < 3; i++) {
        assertThat(m.head("/v2/patterns/app/manifests/2.1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
        assertThat(m.head("/v2/patterns/app/manifests/main-dev", "Accept", DOCKER).statusCode()).isEqualTo(200);
      }
      assertThat(upstream.count("HEAD", ".*/manifests/2.1.0")).isEqualTo(1);
      assertThat(upstream.count("HEAD", ".*/manifests/main-dev")).isEqualTo(3);
    } finally {
      m.close();
    }
  }

  @Test
  void aPinnedTagKeepsItsDigestWhileItsMovesAreReported(Vertx vertx, @TempDir Path cache) throws Exception {
    Image first = seeder.pushImage("pinned/app", "stable", 1, 10_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "100ms", "100ms", "{tags: stable, pin: true}", "");
    try {
      assertThat(m.get("/v2/pinned/app/manifests/stable", "Accept", DOCKER).body()).isEqualTo(first.manifest());
      Image second = seeder.pushImage("pinned/app", "stable", 1, 10_000, "docker");
      eventually(SOON, () -> second.manifestDigest().equals(
          tag(m, "pinned/app", "stable").getString("upstreamDigest")), "the move to be recorded");
      JsonObject tracked = tag(m, "pinned/app", "stable");
      assertThat(tracked.getString("digest")).isEqualTo(first.manifestDigest());
      assertThat(tracked.getBoolean("pinned")).isTrue();
      assertThat(tracked.getJsonArray("history")).hasSize(1);

      HttpResponse<byte[]> pulled = m.get("/v2/pinned/app/manifests/stable", "Accept", DOCKER);
      assertThat(pulled.body()).isEqualTo(first.manifest());
      assertThat(pulled.headers().firstValue("Docker-Content-Digest")).hasValue(first.manifestDigest());
      assertThat(m.head("/v2/pinned/app/manifests/stable", "Accept", DOCKER).headers()
          .firstValue("Docker-Content-Digest")).hasValue(first.manifestDigest());
    } finally {
      m.close();
    }
  }

  @Test
  void aTagPinnedToAGivenDigestServesItWhateverUpstreamSays(Vertx vertx, @TempDir Path cache) throws Exception {
    Image pinned = seeder.pushImage("frozen/app", "prod", 1, 10_000, "docker");
    Image later = seeder.pushImage("frozen/app", "prod", 1, 10_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "1h", "0s",
        "{repositories: frozen/app, tags: prod, pin: \"" + pinned.manifestDigest() + "\"}", "");
    try {
      HttpResponse<byte[]> got = m.get("/v2/frozen/app/manifests/prod", "Accept", DOCKER);
      assertThat(got.body()).isEqualTo(pinned.manifest());
      JsonObject tracked = tag(m, "frozen/app", "prod");
      assertThat(tracked.getString("digest")).isEqualTo(pinned.manifestDigest());
      assertThat(tracked.getString("upstreamDigest")).isEqualTo(later.manifestDigest());
    } finally {
      m.close();
    }
  }

  @Test
  void theTagApiListsAndFilters(Vertx vertx, @TempDir Path cache) throws Exception {
    Image a = seeder.pushImage("listed/one", "1.0", 1, 10_000, "docker");
    seeder.pushImage("listed/two", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "1h", "0s", "", "");
    try {
      m.get("/v2/listed/one/manifests/1.0", "Accept", DOCKER);
      m.get("/v2/listed/two/manifests/1.0", "Accept", DOCKER);
      JsonArray all = new JsonObject(new String(m.get("/api/v1/tags").body())).getJsonArray("tags");
      assertThat(all).hasSize(2);
      JsonArray one = new JsonObject(new String(m.get("/api/v1/tags?repository=listed/one").body()))
          .getJsonArray("tags");
      assertThat(one).hasSize(1);
      assertThat(one.getJsonObject(0).getString("digest")).isEqualTo(a.manifestDigest());
      assertThat(one.getJsonObject(0).getString("upstream")).isEqualTo("local");
      assertThat(new JsonObject(new String(m.get("/api/v1/tags?upstream=elsewhere").body())).getJsonArray("tags"))
          .isEmpty();
      HttpResponse<byte[]> unknown = m.get("/api/v1/tags/local/listed/one/2.0");
      assertThat(unknown.statusCode()).isEqualTo(404);
      assertThat(new String(unknown.body())).contains("MANIFEST_UNKNOWN");
      assertThat(m.get("/api/v1/tags/local/../etc/passwd").statusCode()).isBetween(400, 404);
    } finally {
      m.close();
    }
  }

  @Test
  void aMoveWarmsTheCacheWithTheNewImageOfTheChosenPlatforms(Vertx vertx, @TempDir Path cache) throws Exception {
    List<Platform> platforms = List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64/v8"));
    Index first = seeder.pushIndex("warm/app", "latest", platforms);
    MirrorUnderTest m = tracking(vertx, cache, "100ms", "100ms", "{tags: latest, warm: [linux/arm64/v8]}", "");
    try {
      assertThat(m.get("/v2/warm/app/manifests/latest", "Accept", OCI_INDEX).body()).isEqualTo(first.body());
      Index second = seeder.pushIndex("warm/app", "latest", platforms);
      Image arm = second.children().get(1);
      Image amd = second.children().get(0);
      eventually(SOON, () -> arm.blobs().keySet().stream().allMatch(d -> Files.exists(m.blobFile(d))),
          "the new arm64 image in the cache");
      assertThat(amd.layerDigests()).noneMatch(d -> Files.exists(m.blobFile(d)));

      // The rollout that follows is served from the cache.
      long gets = upstream.count("GET", ".*");
      HttpResponse<byte[]> index = m.get("/v2/warm/app/manifests/" + second.digest(), "Accept", OCI_INDEX);
      assertThat(index.body()).isEqualTo(second.body());
      HttpResponse<byte[]> manifest = m.get("/v2/warm/app/manifests/" + arm.manifestDigest(), "Accept", arm.mediaType());
      assertThat(manifest.body()).isEqualTo(arm.manifest());
      assertThat(manifest.headers().firstValue("X-Mirror-Cache")).hasValue("hit");
      for (var blob : arm.blobs().entrySet()) {
        assertThat(m.get("/v2/warm/app/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
      }
      assertThat(upstream.count("GET", ".*")).as("GETs upstream for the warmed image").isEqualTo(gets);
    } finally {
      m.close();
    }
  }

  @Test
  void aFailingWebhookIsRetriedAndTheHistoryIsBounded(Vertx vertx, @TempDir Path cache) throws Exception {
    Queue<JsonObject> delivered = new ConcurrentLinkedQueue<>();
    int[] attempts = {0};
    HttpServer receiver = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      // The first delivery meets a broken receiver; the retry a second later gets through.
      if (attempts[0]++ == 0) {
        req.response().setStatusCode(500).end();
      } else {
        delivered.add(body.toJsonObject());
        req.response().setStatusCode(200).end();
      }
    }));
    receiver.listen(0, "127.0.0.1").await();
    seeder.pushImage("bounded/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 0s",
        "tags:\n  history: 2\n  refreshInterval: 0s\n  webhooks: [\"http://127.0.0.1:" + receiver.actualPort() + "/\"]\n");
    try {
      m.get("/v2/bounded/app/manifests/1.0", "Accept", DOCKER);
      String last = null;
      for (int i = 0; i < 3; i++) {
        last = seeder.pushImage("bounded/app", "1.0", 1, 10_000, "docker").manifestDigest();
        m.get("/v2/bounded/app/manifests/1.0", "Accept", DOCKER);
      }
      JsonArray history = tag(m, "bounded/app", "1.0").getJsonArray("history");
      assertThat(history).hasSize(2);
      assertThat(history.getJsonObject(1).getString("to")).isEqualTo(last);
      eventually(SOON, () -> delivered.size() == 3, "every move delivered, the first one retried");
      assertThat(attempts[0]).isEqualTo(4);
    } finally {
      m.close();
      receiver.close().await();
    }
  }

  /**
   * A receiver that answers a byte at a time never lets the idle timeout fire: its answer is cut
   * after the webhook timeout (10 s), and the delivery is tried again a second later.
   */
  @Test
  void aWebhookWhoseAnswerDripsIsCutAndRetried(Vertx vertx, @TempDir Path cache) throws Exception {
    Queue<Long> posts = new ConcurrentLinkedQueue<>();
    HttpServer receiver = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      posts.add(System.nanoTime());
      if (posts.size() > 1) {
        req.response().setStatusCode(204).end();
        return;
      }
      req.response().setStatusCode(200).setChunked(true);
      vertx.setPeriodic(500, id -> {
        if (req.response().closed()) {
          vertx.cancelTimer(id);
        } else {
          req.response().write("x");
        }
      });
    }));
    receiver.listen(0, "127.0.0.1").await();
    seeder.pushImage("dripped/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 0s",
        "tags:\n  refreshInterval: 0s\n  webhooks: [\"http://127.0.0.1:" + receiver.actualPort() + "/\"]\n");
    try {
      m.get("/v2/dripped/app/manifests/1.0", "Accept", DOCKER);
      seeder.pushImage("dripped/app", "1.0", 1, 10_000, "docker");
      m.get("/v2/dripped/app/manifests/1.0", "Accept", DOCKER);
      eventually(SOON, () -> posts.size() == 2, "the delivery to be tried again");
      long apart = posts.stream().reduce((first, second) -> second - first).orElseThrow();
      assertThat(Duration.ofNanos(apart)).isBetween(Duration.ofSeconds(10), Duration.ofSeconds(15));
    } finally {
      m.close();
      receiver.close().await();
    }
  }

  @Test
  void unpulledTagsAreForgottenAndTheirHistoryKeptAcrossARestart(Vertx vertx, @TempDir Path cache) throws Exception {
    Image first = seeder.pushImage("kept/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 0s",
        "tags:\n  refreshInterval: 50ms\n  forgetAfter: 1s\n");
    Image second;
    try {
      assertThat(m.get("/v2/kept/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(first.manifest());
      second = seeder.pushImage("kept/app", "1.0", 1, 10_000, "docker");
      // With a TTL of zero every pull asks: this one sees the move.
      assertThat(m.get("/v2/kept/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(second.manifest());
      assertThat(metric(m, "mirror_tags_tracked")).isEqualTo(1);
      eventually(SOON, () -> metricOr(m, "mirror_tags_tracked") == 0, "the unpulled tag to be forgotten");
      assertThat(m.get("/api/v1/tags/local/kept/app/1.0").statusCode()).isEqualTo(404);
    } finally {
      m.close();
    }
    MirrorUnderTest restarted = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 1h", "");
    try {
      // Loaded from disk at start-up, history included.
      JsonObject tracked = tag(restarted, "kept/app", "1.0");
      assertThat(tracked.getString("digest")).isEqualTo(second.manifestDigest());
      JsonArray history = tracked.getJsonArray("history");
      assertThat(history).hasSize(1);
      assertThat(history.getJsonObject(0).getString("from")).isEqualTo(first.manifestDigest());
      assertThat(history.getJsonObject(0).getString("seen")).isEqualTo("pull");
    } finally {
      restarted.close();
    }
  }
}
