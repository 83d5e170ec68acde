package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.Main;
import io.registrymirror.cluster.ClusterVertx;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.MirrorConfig;
import io.registrymirror.metrics.MeterRegistries;
import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Chromium;
import io.registrymirror.testing.ClusterPlan;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.S3Server;
import io.registrymirror.testing.TestCertificate;
import io.registrymirror.testing.TestLimits;
import io.registrymirror.cluster.Rendezvous;
import io.registrymirror.oci.Digest;
import java.nio.file.Files;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three replicas in a cluster (Hazelcast on loopback) in front of the real reference registry,
 * whose blob requests are counted: a blob is fetched from upstream once for the whole cluster,
 * whichever replicas its clients ask, and stored only by its owner.
 */
class ClusterTest {

  private static final String DOCKER = "application/vnd.docker.distribution.manifest.v2+json";

  private static ReferenceRegistry registry;
  private static Image image;

  private Forwarder upstream;
  private ClusterPlan plan;
  /** Replicas of the plan started so far, running or not. */
  private int started;
  private final List<Replica> replicas = new ArrayList<>();

  /** One replica: its own Vert.x, a member of the cluster, and the mirror on it. */
  private record Replica(Vertx vertx, MirrorUnderTest mirror) {}

  @BeforeAll
  static void startRegistry() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
    image = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 3, 8 * 1024 * 1024, "docker");
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
    }
  }

  @AfterEach
  void stop() {
    for (Replica replica : replicas) {
      stop(replica);
    }
    if (upstream != null) {
      upstream.close();
    }
  }

  private void startCluster(int n, Path dir, String clusterKeys) throws Exception {
    startCluster(n, dir, clusterKeys, "", "");
  }

  /**
   * Starts {@code n} replicas that know each other's member ports, with more keys for the
   * upstream and more top-level configuration, and waits until each sees all.
   */
  private void startCluster(int n, Path dir, String clusterKeys, String upstreamKeys, String topLevel)
      throws Exception {
    upstream = Forwarder.start(registry.port());
    plan = new ClusterPlan(n);
    start(n, dir, clusterKeys, upstreamKeys, topLevel);
  }

  /**
   * Starts the next {@code count} replicas of the plan (each with a cache of its own, never used
   * before), and waits until every replica running sees all.
   */
  private void start(int count, Path dir, String clusterKeys, String upstreamKeys, String topLevel) throws Exception {
    List<CompletableFuture<Replica>> starting = new ArrayList<>();
    int first = started;
    started += count;
    for (int i = first; i < first + count; i++) {
      Path cache = dir.resolve("replica-" + i);
      String yaml = plan.yaml(i, cache, upstream.url(), TestLimits.upstreamTimeoutsYaml() + upstreamKeys, clusterKeys)
          + topLevel;
      starting.add(CompletableFuture.supplyAsync(() -> {
        MirrorConfig config = ConfigLoader.parse(yaml);
        Vertx vertx = ClusterVertx.start(Main.builder(MeterRegistries.prometheusRegistry()), Main.options(), config)
            .await();
        return new Replica(vertx, MirrorUnderTest.startWithConfig(vertx, yaml, cache));
      }));
    }
    for (CompletableFuture<Replica> replica : starting) {
      replicas.add(replica.get());
    }
    int n = replicas.size();
    for (Replica replica : replicas) {
      eventually(Duration.ofSeconds(30), () -> ClusterPlan.servingReplicas(
          new String(replica.mirror().get("/metrics").body())) == n, "every replica to see " + n);
    }
  }

  @Test
  void withTheObjectStorageTierAFreshReplicaServesABlobWithoutAskingUpstream(@TempDir Path dir) throws Exception {
    try (S3Server s3 = S3Server.start(Files.createDirectories(dir.resolve("s3")))) {
      s3.createBucket("cluster");
      upstream = Forwarder.start(registry.port());
      plan = new ClusterPlan(4);
      start(3, dir, "", "", s3.yaml("cluster"));
      // A blob that the fourth replica will own, once it is there: it must come from the bucket.
      String fourth = plan.advertised(3);
      ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());
      byte[] content;
      String digest;
      java.util.Random random = new java.util.Random();
      do {
        content = new byte[2 * 1024 * 1024];
        random.nextBytes(content);
        digest = ImageSeeder.sha256(content);
      } while (!Rendezvous.owner(plan.advertised(), Digest.parse(digest)).equals(fourth));
      seeder.pushBlob("team/app", content);
      assertThat(replicas.get(0).mirror().get("/v2/team/app/blobs/" + digest).body()).isEqualTo(content);
      String key = "blobs/" + digest.replace(':', '/');
      String blob = digest;
      eventually(Duration.ofSeconds(20), () -> s3.exists("cluster", key), "the blob in the bucket");
      upstream.clear();

      start(1, dir, "", "", s3.yaml("cluster"));
      for (Replica replica : List.of(replicas.get(3), replicas.get(1))) {
        HttpResponse<byte[]> got = replica.mirror().get("/v2/team/app/blobs/" + blob);
        assertThat(got.statusCode()).isEqualTo(200);
        assertThat(got.body()).isEqualTo(content);
      }
      assertThat(upstream.count("GET", ".*/blobs/.*")).isZero();
      // The new owner filled from the bucket, and keeps it (installed a moment after it was verified).
      eventually(Duration.ofSeconds(10), () -> CacheContents.files(replicas.get(3).mirror().cacheDir()).stream()
          .anyMatch(f -> f.getFileName().toString().equals(blob.substring("sha256:".length()))), "the blob installed");
    }
  }


  /**
   * Behind TLS the replicas reach each other over TLS, each trusting the certificate they share
   * at an address it does not name: a blob asked of the replica that does not own it still comes
   * from its owner, never from upstream a second time.
   */
  @Test
  void behindTlsABlobComesFromItsOwnerOverTls(@TempDir Path dir) throws Exception {
    TestCertificate cert = TestCertificate.generate(Files.createDirectories(dir.resolve("tls")), "registry-mirror",
        "dns:registry-mirror.example");
    startCluster(2, dir, "", "", "tls:\n  cert: %s\n  key: %s\n".formatted(cert.certPem(), cert.keyPem()));
    String digest = image.layerDigests().get(1);
    int owner = plan.advertised().indexOf(Rendezvous.owner(plan.advertised(), Digest.parse(digest)));
    MirrorUnderTest other = replicas.get(1 - owner).mirror();

    HttpResponse<byte[]> got = other.get("/v2/team/app/blobs/" + digest);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(ImageSeeder.sha256(got.body())).isEqualTo(digest);
    assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
    assertThat(peerRequests(other)).isEqualTo(1);
  }

  @Test
  void aBlobPulledThroughEachReplicaInTurnIsFetchedFromUpstreamOnce(@TempDir Path dir) throws Exception {
    startCluster(3, dir, "");
    String digest = image.layerDigests().get(0);
    byte[] content = image.blobs().get(digest);

    for (Replica replica : replicas) {
      HttpResponse<byte[]> got = replica.mirror().get("/v2/team/app/blobs/" + digest);
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(ImageSeeder.sha256(got.body())).isEqualTo(digest);
      assertThat(got.body()).isEqualTo(content);
    }
    assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
    // Stored once in the cluster: by its owner, not by the replicas that fetched it from there.
    assertThat(holders(digest)).isEqualTo(1);
    // Each of the others asked the owner once, and the next client of each is sent that copy
    // as a cached file; a range of it too.
    for (Replica replica : replicas) {
      HttpResponse<byte[]> again = replica.mirror().get("/v2/team/app/blobs/" + digest);
      assertThat(again.body()).isEqualTo(content);
      assertThat(again.headers().firstValue("X-Mirror-Cache")).hasValue("hit");
      HttpResponse<byte[]> part = replica.mirror().get("/v2/team/app/blobs/" + digest, "Range", "bytes=100-199");
      assertThat(part.statusCode()).isEqualTo(206);
      assertThat(part.body()).isEqualTo(java.util.Arrays.copyOfRange(content, 100, 200));
    }
    assertThat(replicas.stream().mapToDouble(r -> peerRequests(r.mirror())).sum()).isEqualTo(2);
    assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);

    // Each replica's status says where it is, which replicas serve, and what it asked of owners.
    String owner = Rendezvous.owner(plan.advertised(), Digest.parse(digest));
    for (int i = 0; i < replicas.size(); i++) {
      JsonObject cluster = new JsonObject(new String(replicas.get(i).mirror().get("/api/v1/status").body()))
          .getJsonObject("cluster");
      String self = plan.advertised(i);
      assertThat(cluster.getString("self")).isEqualTo(self);
      assertThat(cluster.getJsonArray("replicas").getList()).containsExactlyInAnyOrderElementsOf(plan.advertised());
      assertThat(cluster.getJsonObject("requestsToOwners").getLong("2xx")).isEqualTo(self.equals(owner) ? 0 : 1);
      assertThat(cluster.getLong("receivedBytes")).isEqualTo(self.equals(owner) ? 0 : content.length);
    }
    Required.tool(Chromium.available(), "chromium (the status page is loaded in it)", "chromium");
    String dom = Chromium.load(replicas.get(0).mirror().url() + "/", Path.of("target", "status-page-cluster.png"), dir);
    int section = dom.indexOf("<section id=\"cluster\"");
    assertThat(section).isNotNegative();
    String shown = dom.substring(section, dom.indexOf("</section>", section));
    assertThat(shown).doesNotContain("hidden").contains("3 replicas serve");
    for (String replica : plan.advertised()) {
      assertThat(shown).contains("<code>" + replica + "</code>");
    }
    assertThat(shown).contains("this replica");
  }

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

  /** The blob requests a replica sent to owners that answered 200. */
  private static double peerRequests(MirrorUnderTest mirror) {
    String series = "mirror_peer_requests_total{status=\"2xx\"} ";
    return new String(mirror.get("/metrics").body()).lines().filter(l -> l.startsWith(series)).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length()).trim())).orElse(0.0);
  }

  @Test
  void thirtyConcurrentColdClientsOverThreeReplicasMakeOneUpstreamGet(@TempDir Path dir) throws Exception {
    startCluster(3, dir, "");
    String digest = image.layerDigests().get(1);
    ExecutorService clients = Executors.newFixedThreadPool(30);
    try {
      List<CompletableFuture<HttpResponse<byte[]>>> pulls = new ArrayList<>();
      for (int i = 0; i < 30; i++) {
        MirrorUnderTest mirror = replicas.get(i % replicas.size()).mirror();
        pulls.add(CompletableFuture.supplyAsync(() -> mirror.get("/v2/team/app/blobs/" + digest), clients));
      }
      for (CompletableFuture<HttpResponse<byte[]>> pull : pulls) {
        HttpResponse<byte[]> got = pull.get();
        assertThat(got.statusCode()).isEqualTo(200);
        assertThat(ImageSeeder.sha256(got.body())).isEqualTo(digest);
      }
    } finally {
      clients.shutdownNow();
    }
    assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
    assertThat(holders(digest)).isEqualTo(1);
    // One transfer from the owner per other replica, shared by its ten clients.
    assertThat(replicas.stream().mapToDouble(r -> peerRequests(r.mirror())).sum()).isEqualTo(2);
  }

  @Test
  void withKeepCopiesEveryReplicaThatServedTheBlobKeepsIt(@TempDir Path dir) throws Exception {
    startCluster(3, dir, "keepCopies: true");
    String digest = image.layerDigests().get(2);
    for (Replica replica : replicas) {
      assertThat(replica.mirror().get("/v2/team/app/blobs/" + digest).statusCode()).isEqualTo(200);
    }
    assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
    eventually(Duration.ofSeconds(10), () -> holders(digest) == 3, "a copy on every replica");
    upstream.clear();
    for (Replica replica : replicas) {
      HttpResponse<byte[]> again = replica.mirror().get("/v2/team/app/blobs/" + digest);
      assertThat(again.headers().firstValue("X-Mirror-Cache")).hasValue("hit");
    }
    assertThat(upstream.seen()).isEmpty();
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

  private static void stop(Replica replica) {
    replica.mirror().close();
    replica.vertx().close().await();
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

  /** How many replicas' caches hold the blob's file (copies not kept are never installed). */
  private long holders(String digest) {
    String hex = digest.substring(digest.indexOf(':') + 1);
    return replicas.stream()
        .filter(r -> CacheContents.files(r.mirror().cacheDir()).stream()
            .anyMatch(f -> f.getFileName().toString().equals(hex)))
        .count();
  }
}
