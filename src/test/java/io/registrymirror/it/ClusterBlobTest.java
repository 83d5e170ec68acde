package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.cluster.Rendezvous;
import io.registrymirror.oci.Digest;
import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Chromium;
import io.registrymirror.testing.ClusterPlan;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.S3Server;
import io.registrymirror.testing.TestCertificate;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Blobs in a cluster, in front of the real reference registry whose blob requests are counted: a
 * blob is fetched from upstream once for the whole cluster, whichever replicas its clients ask,
 * and stored only by its owner (or by every replica that served it, with keepCopies); behind TLS
 * too; and with the object storage tier, a replica that joins serves from the bucket.
 */
class ClusterBlobTest extends ClusterTestBase {

  private static Image image;

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 3, 8 * 1024 * 1024, "docker");
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
      assertThat(part.body()).isEqualTo(Arrays.copyOfRange(content, 100, 200));
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
      Random random = new Random();
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
}
