package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tag that moves is reported once, however many revalidations of it see the move at the same
 * moment: clients asking with different {@code Accept} headers each make their own upstream
 * HEAD, and their answers, let go together, race to be recorded.
 */
@Timeout(300)
class TagMoveRaceTest extends MirrorTestBase {

  private static final int ROUNDS = 50;
  private static final int FORGOTTEN_ROUNDS = 10;
  private static final String[] ACCEPTS = {
      ImageSeeder.DOCKER_MANIFEST,
      ImageSeeder.DOCKER_MANIFEST + ", " + ImageSeeder.OCI_MANIFEST,
      ImageSeeder.DOCKER_MANIFEST + ", " + ImageSeeder.DOCKER_MANIFEST_LIST,
      ImageSeeder.DOCKER_MANIFEST + ", " + ImageSeeder.OCI_MANIFEST + ", " + ImageSeeder.OCI_INDEX,
  };

  @Test
  void concurrentRevalidationsReportAMoveExactlyOnce(Vertx vertx, @TempDir Path cache) throws Exception {
    race(vertx, cache, "race/app", ROUNDS, "7d", false);
  }

  /**
   * A tag the refresher stopped tracking is read back from disk by each revalidation that sees
   * it again: the reads run side by side, and must still make one record and one report.
   */
  @Test
  void concurrentRevalidationsOfAForgottenTagReportAMoveExactlyOnce(Vertx vertx, @TempDir Path cache)
      throws Exception {
    race(vertx, cache, "race/forgotten", FORGOTTEN_ROUNDS, "1s", true);
  }

  private void race(Vertx vertx, Path cache, String repository, int rounds, String forgetAfter, boolean forget)
      throws Exception {
    Queue<JsonObject> hooks = new ConcurrentLinkedQueue<>();
    HttpServer receiver = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      hooks.add(body.toJsonObject());
      req.response().setStatusCode(204).end();
    }));
    receiver.listen(0, "127.0.0.1").await();
    ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());
    Image image = seeder.pushImage(repository, "latest", 1, 2_000, "docker");
    String path = "/v2/" + repository + "/manifests/latest";
    String head = ".*/" + repository + "/manifests/latest";
    // Every pull revalidates (TTL 0); the refresher only forgets tags, it has none to refresh.
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 0s", """
        tags:
          refreshInterval: 50ms
          forgetAfter: %s
          history: %d
          webhooks: ["http://127.0.0.1:%d/hook"]
        """.formatted(forgetAfter, rounds * 2, receiver.actualPort()));
    ExecutorService clients = Executors.newFixedThreadPool(ACCEPTS.length);
    try (LogCapture log = LogCapture.start()) {
      assertThat(m.get(path, "Accept", ACCEPTS[0]).body()).isEqualTo(image.manifest());
      List<String> digests = new ArrayList<>(List.of(image.manifestDigest()));
      for (int round = 0; round < rounds; round++) {
        if (forget) {
          eventually(Duration.ofSeconds(10), () -> metric(m, "mirror_tags_tracked") == 0, "the tag to be forgotten");
        }
        Image next = seeder.pushImage(repository, "latest", 1, 2_000, "docker");
        digests.add(next.manifestDigest());
        // Upstream's answers to the revalidations are let go together, as when they race.
        CompletableFuture<Void> release = new CompletableFuture<>();
        upstream.fault(matching("HEAD", head), Fault.holdHeaders(release), ACCEPTS.length);
        long heads = upstream.arrived("HEAD", head);
        List<Future<HttpResponse<byte[]>>> pulls = new ArrayList<>();
        for (String accept : ACCEPTS) {
          pulls.add(clients.submit(() -> m.get(path, "Accept", accept)));
        }
        eventually(Duration.ofSeconds(10), () -> upstream.arrived("HEAD", head) == heads + ACCEPTS.length,
            "a revalidation for each Accept header");
        release.complete(null);
        for (Future<HttpResponse<byte[]>> pull : pulls) {
          assertThat(pull.get().body()).isEqualTo(next.manifest());
        }
      }

      JsonArray history = new JsonObject(new String(m.get("/api/v1/tags/local/" + repository + "/latest").body()))
          .getJsonArray("history");
      List<String> moves = new ArrayList<>();
      for (int i = 0; i < history.size(); i++) {
        moves.add(history.getJsonObject(i).getString("from") + ">" + history.getJsonObject(i).getString("to"));
      }
      List<String> expected = new ArrayList<>();
      for (int i = 1; i < digests.size(); i++) {
        expected.add(digests.get(i - 1) + ">" + digests.get(i));
      }
      assertThat(moves).as("one history entry per move").isEqualTo(expected);
      assertThat(metric(m, "mirror_tag_moves_total{seen=\"pull\",upstream=\"local\"}")).isEqualTo(rounds);
      assertThat(log.lines()).filteredOn(l -> l.contains("event=tag.moved")).hasSize(rounds);
      eventually(Duration.ofSeconds(20), () -> hooks.size() >= rounds, "a webhook call per move");
      // Deliveries start as a move is recorded: a second one for any move would be here by now.
      assertThat(m.get("/v2/").statusCode()).isEqualTo(200);
      assertThat(hooks).hasSize(rounds);
    } finally {
      clients.shutdownNow();
      m.close();
      receiver.close().await();
    }
  }

  private static double metric(MirrorUnderTest m, String series) {
    String metrics = new String(m.get("/metrics").body());
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
        .orElseThrow(() -> new AssertionError("no series " + series + " in:\n" + metrics));
  }
}
