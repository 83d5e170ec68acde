package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.cluster.Rendezvous;
import io.registrymirror.testing.ClusterPlan;
import io.registrymirror.testing.Forwarder;
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
import org.junit.jupiter.api.io.TempDir;

/**
 * Manifests and tags in a cluster, in front of the real reference registry whose requests are
 * counted: an image pulled by tag through every replica is what Docker Hub counts as one pull;
 * a tag move is reported once for the cluster; its history outlives the tag's owner and reaches
 * a replica that joins with an empty cache.
 */
class ClusterTagTest extends ClusterTestBase {

  @Test
  void anImagePulledByTagThroughEveryReplicaIsOnePullUpstream(@TempDir Path dir) throws Exception {
    startCluster(3, dir, "");
    ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());
    Image pulled = seeder.pushImage("team/once", "2.0", 2, 256 * 1024, "docker");
    for (Replica replica : replicas) {
      HttpResponse<byte[]> manifest = replica.mirror().get("/v2/team/once/manifests/2.0", "Accept", DOCKER);
      assertThat(manifest.statusCode()).isEqualTo(200);
      assertThat(manifest.body()).isEqualTo(pulled.manifest());
      for (Map.Entry<String, byte[]> blob : pulled.blobs().entrySet()) {
        assertThat(replica.mirror().get("/v2/team/once/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
      }
    }
    // What Docker Hub would count: one manifest GET (and one HEAD, by the tag's owner), and
    // each blob once, for the whole cluster.
    assertThat(upstream.count("HEAD", ".*/manifests/2.0")).isEqualTo(1);
    assertThat(upstream.count("GET", ".*/manifests/.*")).isEqualTo(1);
    for (String digest : pulled.blobs().keySet()) {
      assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
    }
  }

  @Test
  void aTagMoveIsReportedOnceForTheClusterAndItsHistoryOutlivesTheOwner(@TempDir Path dir) throws Exception {
    Vertx vertx = Vertx.vertx();
    Queue<JsonObject> events = new ConcurrentLinkedQueue<>();
    HttpServer receiver = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      events.add(body.toJsonObject());
      req.response().setStatusCode(204).end();
    }));
    receiver.listen(0, "127.0.0.1").await();
    try {
      ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());
      Image first = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
      // Revalidated on every pull: every pull through any replica asks the tag's owner.
      String tags = """
          tags:
            refreshInterval: 0s
            webhooks: ["http://127.0.0.1:%d/hook"]
          """.formatted(receiver.actualPort());
      upstream = Forwarder.start(registry.port());
      plan = new ClusterPlan(4);
      start(3, dir, "", "tagTtl: 0s\n", tags);
      for (Replica replica : replicas) {
        assertThat(replica.mirror().get("/v2/moving/app/manifests/latest", "Accept", DOCKER).body())
            .isEqualTo(first.manifest());
      }
      Image second = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
      for (Replica replica : replicas) {
        HttpResponse<byte[]> got = replica.mirror().get("/v2/moving/app/manifests/latest", "Accept", DOCKER);
        assertThat(got.body()).isEqualTo(second.manifest());
      }
      // Counted before any pull is answered: the sum is final.
      assertThat(replicas.stream().mapToDouble(r -> moves(r.mirror())).sum()).isEqualTo(1);
      eventually(Duration.ofSeconds(10), () -> !events.isEmpty(), "the webhook");
      assertThat(events).hasSize(1);
      assertThat(events.peek().getString("to")).isEqualTo(second.manifestDigest());
      // Every replica keeps the history: the owner's loss does not take it away.
      for (Replica replica : replicas) {
        assertThat(history(replica.mirror())).hasSize(1);
      }

      List<String> running = plan.advertised().subList(0, 3);
      int owner = running.indexOf(Rendezvous.owner(running, "local/moving/app:latest"));
      Replica gone = replicas.remove(owner);
      stop(gone);
      for (Replica replica : replicas) {
        eventually(Duration.ofSeconds(30), () -> ClusterPlan.servingReplicas(
            new String(replica.mirror().get("/metrics").body())) == 2, "the owner to be gone");
      }
      Image third = seeder.pushImage("moving/app", "latest", 1, 20_000, "docker");
      double before = replicas.stream().mapToDouble(r -> moves(r.mirror())).sum();
      for (Replica replica : replicas) {
        HttpResponse<byte[]> got = replica.mirror().get("/v2/moving/app/manifests/latest", "Accept", DOCKER);
        assertThat(got.body()).isEqualTo(third.manifest());
      }
      assertThat(replicas.stream().mapToDouble(r -> moves(r.mirror())).sum()).isEqualTo(before + 1);
      for (Replica replica : replicas) {
        JsonArray history = history(replica.mirror());
        assertThat(history).hasSize(2);
        assertThat(history.getJsonObject(1).getString("to")).isEqualTo(third.manifestDigest());
      }

      // A replica that joins with an empty cache takes the others' records, history included,
      // without asking upstream.
      upstream.clear();
      start(1, dir, "", "tagTtl: 0s\n", tags);
      MirrorUnderTest joined = replicas.get(replicas.size() - 1).mirror();
      eventually(Duration.ofSeconds(20), () -> joined.get("/api/v1/tags/local/moving/app/latest").statusCode() == 200,
          "the replica that joined to know the tag");
      JsonArray history = history(joined);
      assertThat(history).hasSize(2);
      assertThat(history.getJsonObject(0).getString("to")).isEqualTo(second.manifestDigest());
      assertThat(history.getJsonObject(1).getString("to")).isEqualTo(third.manifestDigest());
      assertThat(upstream.seen()).isEmpty();
    } finally {
      receiver.close().await();
      vertx.close().await();
    }
  }

  /** The tag moves the replica reported. */
  private static double moves(MirrorUnderTest mirror) {
    String series = "mirror_tag_moves_total{seen=\"pull\",upstream=\"local\"} ";
    return new String(mirror.get("/metrics").body()).lines().filter(l -> l.startsWith(series)).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length()).trim())).orElse(0.0);
  }

  private static JsonArray history(MirrorUnderTest mirror) {
    HttpResponse<byte[]> r = mirror.get("/api/v1/tags/local/moving/app/latest");
    assertThat(r.statusCode()).isEqualTo(200);
    return new JsonObject(new String(r.body())).getJsonArray("history");
  }
}
