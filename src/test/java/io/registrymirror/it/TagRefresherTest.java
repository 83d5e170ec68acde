package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The background refresher, against the real registry: it sees a re-push without any client
 * asking, records it in the tag's history, the metric and a webhook, and the next pull gets the
 * new image; an unchanged tag costs HEADs only; it keeps to its budget, and leaves an upstream
 * alone after a 429, a 5xx, or when its quota runs low.
 */
@Timeout(120)
class TagRefresherTest extends TagTestBase {

  private static final String FAILED = "mirror_tag_refreshes_total{result=\"failed\",upstream=\"local\"}";
  private static final String REFRESHED = "mirror_tag_refreshes_total{result=\"ok\",upstream=\"local\"}";

  @Test
  void theRefresherSeesARepushAndTheNextPullGetsTheNewImage(Vertx vertx, @TempDir Path cache) throws Exception {
    Queue<JsonObject> events = new ConcurrentLinkedQueue<>();
    HttpServer receiver = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      events.add(body.toJsonObject());
      req.response().setStatusCode(204).end();
    }));
    receiver.listen(0, "127.0.0.1").await();
    Image first = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "2s", "500ms", "",
        "\"http://127.0.0.1:" + receiver.actualPort() + "/hook\"");
    try {
      assertThat(m.get("/v2/moving/app/manifests/latest", "Accept", DOCKER).body()).isEqualTo(first.manifest());

      Image second = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
      long started = System.nanoTime();
      // Within the TTL plus one refresh interval, and no client asked.
      eventually(Duration.ofSeconds(2).plusMillis(500).plus(Duration.ofSeconds(2)), () ->
          second.manifestDigest().equals(tag(m, "moving/app", "latest").getString("digest")), "the move to be seen");
      JsonObject tracked = tag(m, "moving/app", "latest");
      JsonArray history = tracked.getJsonArray("history");
      assertThat(history).hasSize(1);
      assertThat(history.getJsonObject(0).getString("from")).isEqualTo(first.manifestDigest());
      assertThat(history.getJsonObject(0).getString("to")).isEqualTo(second.manifestDigest());
      assertThat(history.getJsonObject(0).getString("seen")).isEqualTo("refresh");
      assertThat(metric(m, "mirror_tag_moves_total{seen=\"refresh\",upstream=\"local\"}")).isEqualTo(1);

      HttpResponse<byte[]> next = m.get("/v2/moving/app/manifests/latest", "Accept", DOCKER);
      assertThat(next.body()).isEqualTo(second.manifest());
      assertThat(next.headers().firstValue("Docker-Content-Digest")).hasValue(second.manifestDigest());

      Image third = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
      eventually(SOON, () -> events.size() >= 2, "an event for each move");
      // Several refresh cycles later, still one event per move.
      long heads = upstream.count("HEAD", ".*/manifests/latest");
      eventually(SOON, () -> upstream.count("HEAD", ".*/manifests/latest") >= heads + 3, "more refreshes");
      assertThat(events).hasSize(2);
      List<JsonObject> got = List.copyOf(events);
      assertThat(got.get(0).getString("event")).isEqualTo("tag.moved");
      assertThat(got.get(0).getString("repository")).isEqualTo("moving/app");
      assertThat(got.get(0).getString("tag")).isEqualTo("latest");
      assertThat(got.get(0).getString("from")).isEqualTo(first.manifestDigest());
      assertThat(got.get(0).getString("to")).isEqualTo(second.manifestDigest());
      assertThat(got.get(1).getString("from")).isEqualTo(second.manifestDigest());
      assertThat(got.get(1).getString("to")).isEqualTo(third.manifestDigest());
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(60));
    } finally {
      m.close();
      receiver.close().await();
    }
  }

  @Test
  void aHundredRefreshesOfAnUnchangedTagAreHeadsOnly(Vertx vertx, @TempDir Path cache) throws Exception {
    Image image = seeder.pushImage("steady/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "20ms", "20ms", "", "");
    try {
      assertThat(m.get("/v2/steady/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(image.manifest());
      long gets = upstream.count("GET", ".*/manifests/.*");
      eventually(Duration.ofSeconds(60), () -> upstream.count("HEAD", ".*/manifests/1.0") >= 101, "100 refreshes");
      assertThat(upstream.count("GET", ".*/manifests/.*")).isEqualTo(gets);
      assertThat(upstream.seen()).filteredOn(s -> s.method().equals("GET")).allSatisfy(
          s -> assertThat(s.uri()).doesNotContain("/blobs/"));
      assertThat(tag(m, "steady/app", "1.0").getJsonArray("history")).isEmpty();
    } finally {
      m.close();
    }
  }

  @Test
  void theRefresherLeavesAnUpstreamAloneAfterA429AndWhenItsQuotaRunsLow(Vertx vertx, @TempDir Path cache)
      throws Exception {
    seeder.pushImage("limited/app", "1.0", 1, 10_000, "docker");
    seeder.pushImage("quota/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = tracking(vertx, cache, "20ms", "20ms", "", "");
    try {
      // The pull's own HEAD goes through; the refresher's first one meets a 429 asking for an hour.
      upstream.fault(matching("HEAD", ".*/limited/app/manifests/1.0"), Fault.withHeaders(Map.of(), null), 1);
      upstream.fault(matching("HEAD", ".*/limited/app/manifests/1.0"),
          Fault.status(429, "", Map.of("Retry-After", "3600")), 1);
      assertThat(m.head("/v2/limited/app/manifests/1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
      eventually(SOON, () -> metricOr(m, FAILED) >= 1,
          "the 429");
      assertNoHeadsWhileDeferring(m, "HEADs after a 429 asking for an hour");
    } finally {
      m.close();
    }

    // A quota down to its last few requests is left to clients' pulls.
    upstream.clearFaults();
    upstream.clear();
    MirrorUnderTest q = tracking(vertx, cache.resolve("quota"), "20ms", "20ms", "", "");
    try {
      upstream.fault(matching("HEAD", ".*/quota/app/manifests/1.0"), Fault.withHeaders(
          Map.of("ratelimit-limit", "100;w=21600", "ratelimit-remaining", "5;w=21600"), null));
      assertThat(q.head("/v2/quota/app/manifests/1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
      assertNoHeadsWhileDeferring(q, "HEADs with 5 of 100 requests left");
    } finally {
      q.close();
    }
  }

  @Test
  void theRefresherKeepsToItsBudgetAndBacksOffAfterA5xx(Vertx vertx, @TempDir Path cache) throws Exception {
    seeder.pushImage("budget/app", "1.0", 1, 10_000, "docker");
    // Two revalidations a minute, asked for every 20 ms: the bucket starts full, then stays empty.
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache,
        "tagTtl: 20ms\nrefreshBudget: 2", "tags:\n  refreshInterval: 20ms\n");
    try {
      assertThat(m.head("/v2/budget/app/manifests/1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
      eventually(SOON, () -> metricOr(m, DEFERRED) >= 20,
          "refreshes deferred by the budget");
      assertThat(metricOr(m, REFRESHED)).isLessThanOrEqualTo(3);
      assertThat(upstream.count("HEAD", ".*/manifests/1.0")).isLessThanOrEqualTo(4);
    } finally {
      m.close();
    }
    upstream.clear();
    MirrorUnderTest b = tracking(vertx, cache.resolve("backoff"), "20ms", "20ms", "", "");
    try {
      upstream.fault(matching("HEAD", ".*/manifests/1.0"), Fault.withHeaders(Map.of(), null), 1);
      upstream.fault(matching("HEAD", ".*/manifests/1.0"), Fault.status(503, "", Map.of()), 1);
      assertThat(b.head("/v2/budget/app/manifests/1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
      eventually(SOON, () -> metricOr(b, FAILED) >= 1,
          "the 503");
      assertNoHeadsWhileDeferring(b, "HEADs within 30 s of a 503");
    } finally {
      b.close();
    }
  }

  private void assertNoHeadsWhileDeferring(MirrorUnderTest m, String what) {
    long heads = upstream.count("HEAD", ".*/manifests/.*");
    double deferred = metricOr(m, DEFERRED);
    eventually(SOON, () -> metricOr(m, DEFERRED) >= deferred + 20, "refreshes deferred");
    assertThat(upstream.count("HEAD", ".*/manifests/.*")).as(what).isEqualTo(heads);
  }
}
