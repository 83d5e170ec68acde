package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.cluster.Rendezvous;
import io.registrymirror.oci.Digest;
import io.registrymirror.testing.ClusterPlan;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.TestLimits;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three replicas as processes of their own; 30 clients pull an image through them while the
 * upstream holds one layer in the middle, and the replica that owns that layer is killed
 * ({@code kill -9}). Every client ends up with the right image, with at most one retry, and
 * only the clients of the killed replica need one: the others' replicas finish the layer from
 * upstream.
 */
class ClusterFailoverTest extends ClusterTestBase {

  private static final int CLIENTS = 30;

  private static Image image;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();
  private final List<MirrorProcess> processes = new ArrayList<>();

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/rollout", "1.0", 3, 4 * 1024 * 1024, "docker");
  }

  @AfterEach
  void stopProcesses() {
    processes.forEach(MirrorProcess::close);
  }

  /** What one client did: whether its image was right, and how many times it had to retry. */
  private record Pull(boolean correct, int retries, int replica, String error) {}

  @Test
  void killingTheOwnerMidRolloutLeavesEveryClientWithTheImage(@TempDir Path dir) throws Exception {
    upstream = Forwarder.start(registry.port());
    plan = new ClusterPlan(3);
    List<CompletableFuture<MirrorProcess>> starting = new ArrayList<>();
    for (int i = 0; i < plan.size(); i++) {
      int replica = i;
      Path cache = dir.resolve("cache-" + i);
      String yaml = plan.yaml(i, cache, upstream.url(), TestLimits.upstreamTimeoutsYaml(), "");
      starting.add(CompletableFuture.supplyAsync(() -> {
        try {
          return MirrorProcess.startConfigured(plan.httpPort(replica), dir, List.of(), List.of("-Xmx256m"), yaml);
        } catch (IOException | InterruptedException e) {
          throw new IllegalStateException(e);
        }
      }));
    }
    for (CompletableFuture<MirrorProcess> replica : starting) {
      processes.add(replica.get());
    }
    for (MirrorProcess replica : processes) {
      eventually(Duration.ofSeconds(30), () -> ClusterPlan.servingReplicas(metrics(replica)) == 3,
          "every replica to see 3");
    }

    // The last layer is caught in the middle of its fetch from upstream, by its owner.
    String held = image.layerDigests().get(image.layerDigests().size() - 1);
    int owner = plan.advertised().indexOf(Rendezvous.owner(plan.advertised(), Digest.parse(held)));
    CompletableFuture<Void> release = new CompletableFuture<>();
    upstream.fault(Forwarder.matching("GET", ".*/blobs/" + held), Fault.holdAfter(1024 * 1024, release), 1);

    CountDownLatch midway = new CountDownLatch(CLIENTS);
    ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
    List<CompletableFuture<Pull>> pulls = new ArrayList<>();
    try {
      for (int c = 0; c < CLIENTS; c++) {
        int replica = c % processes.size();
        pulls.add(CompletableFuture.supplyAsync(() -> pull(replica, owner, held, midway), clients));
      }
      assertThat(midway.await(60, TimeUnit.SECONDS)).as("every client receiving the held layer").isTrue();
      processes.get(owner).kill();
      release.complete(null);

      for (CompletableFuture<Pull> future : pulls) {
        Pull pull = future.get(120, TimeUnit.SECONDS);
        assertThat(pull.correct()).as("client of replica %d: %s", pull.replica(), pull.error()).isTrue();
        // The owner's own clients lost their connection with it, and got the layer elsewhere.
        assertThat(pull.retries()).isEqualTo(pull.replica() == owner ? 1 : 0);
      }
      // The others' replicas took the rest of the layer from upstream, where the owner had left off.
      assertThat(upstream.seen()).filteredOn(s -> s.method().equals("GET") && s.uri().endsWith("/blobs/" + held)
          && s.headers().contains("Range")).isNotEmpty();
    } finally {
      clients.shutdownNow();
    }
  }

  /**
   * Pulls the image from {@code replica}: manifest, config, then the layers, the held one
   * streamed (counting down {@code midway} once its first bytes are in). A blob that breaks off
   * is asked for once more, from the next replica alive, as a client behind a load balancer
   * would be sent there.
   */
  private Pull pull(int replica, int killed, String held, CountDownLatch midway) {
    int retries = 0;
    try {
      HttpResponse<byte[]> manifest = http.send(request(replica, "/v2/team/rollout/manifests/1.0")
          .header("Accept", DOCKER).build(), HttpResponse.BodyHandlers.ofByteArray());
      if (!MessageDigest.isEqual(manifest.body(), image.manifest())) {
        return new Pull(false, retries, replica, "manifest " + manifest.statusCode());
      }
      List<String> blobs = new ArrayList<>(List.of(image.configDigest()));
      blobs.addAll(image.layerDigests());
      for (String digest : blobs) {
        CountDownLatch signal = digest.equals(held) ? midway : null;
        String got = blob(replica, digest, signal);
        if (got == null) {
          retries++;
          int next = (replica + 1) % processes.size() == killed ? (replica + 2) % processes.size()
              : (replica + 1) % processes.size();
          got = blob(next, digest, null);
        }
        if (!digest.equals(got)) {
          return new Pull(false, retries, replica, digest + " hashed to " + got);
        }
      }
      return new Pull(true, retries, replica, null);
    } catch (IOException | InterruptedException e) {
      return new Pull(false, retries, replica, e.toString());
    }
  }

  /** The blob's sha256 digest as received, or null when the transfer broke off. */
  private String blob(int replica, String digest, CountDownLatch midway) throws InterruptedException {
    try {
      HttpResponse<InputStream> response = http.send(request(replica, "/v2/team/rollout/blobs/" + digest).build(),
          HttpResponse.BodyHandlers.ofInputStream());
      try (InputStream body = response.body()) {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        byte[] buffer = new byte[64 * 1024];
        long total = 0;
        boolean signalled = midway == null;
        for (int n; (n = body.read(buffer)) > 0; ) {
          sha.update(buffer, 0, n);
          total += n;
          if (!signalled) {
            midway.countDown();
            signalled = true;
          }
        }
        if (response.statusCode() != 200 || total != image.blobs().get(digest).length) {
          return null;
        }
        return "sha256:" + HexFormat.of().formatHex(sha.digest());
      }
    } catch (IOException e) {
      if (midway != null) {
        midway.countDown();
      }
      return null;
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private HttpRequest.Builder request(int replica, String path) {
    return HttpRequest.newBuilder(URI.create(processes.get(replica).url() + path)).timeout(Duration.ofSeconds(60));
  }

  private String metrics(MirrorProcess replica) {
    try {
      return http.send(HttpRequest.newBuilder(URI.create(replica.url() + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString()).body();
    } catch (IOException e) {
      return "";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "";
    }
  }
}
