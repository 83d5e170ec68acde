package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;

import io.registrymirror.Main;
import io.registrymirror.cluster.ClusterVertx;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.MirrorConfig;
import io.registrymirror.metrics.MeterRegistries;
import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.ClusterPlan;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.TestLimits;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;

/**
 * The setting of every cluster test: the real reference registry for the test class (seeded by
 * the subclass in its own {@code @BeforeAll}), a counting forwarder in front of it, and replicas
 * in one JVM, each with its own Vert.x joined to the others by Hazelcast on loopback, started
 * from a {@link ClusterPlan} (a subclass may run its replicas as processes instead).
 */
abstract class ClusterTestBase extends RegistryTestBase {

  static final String DOCKER = "application/vnd.docker.distribution.manifest.v2+json";

  Forwarder upstream;
  ClusterPlan plan;
  /** Replicas of the plan started so far, running or not. */
  private int started;
  final List<Replica> replicas = new ArrayList<>();

  /** One replica: its own Vert.x, a member of the cluster, and the mirror on it. */
  record Replica(Vertx vertx, MirrorUnderTest mirror) {}

  @AfterEach
  void stop() {
    for (Replica replica : replicas) {
      stop(replica);
    }
    if (upstream != null) {
      upstream.close();
    }
  }

  void startCluster(int n, Path dir, String clusterKeys) throws Exception {
    startCluster(n, dir, clusterKeys, "", "");
  }

  /**
   * Starts {@code n} replicas that know each other's member ports, with more keys for the
   * upstream and more top-level configuration, and waits until each sees all.
   */
  void startCluster(int n, Path dir, String clusterKeys, String upstreamKeys, String topLevel)
      throws Exception {
    upstream = Forwarder.start(registry.port());
    plan = new ClusterPlan(n);
    start(n, dir, clusterKeys, upstreamKeys, topLevel);
  }

  /**
   * Starts the next {@code count} replicas of the plan (each with a cache of its own, never used
   * before), and waits until every replica running sees all.
   */
  void start(int count, Path dir, String clusterKeys, String upstreamKeys, String topLevel) throws Exception {
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

  static void stop(Replica replica) {
    replica.mirror().close();
    replica.vertx().close().await();
  }

  /** The blob requests a replica sent to owners that answered 200. */
  static double peerRequests(MirrorUnderTest mirror) {
    String series = "mirror_peer_requests_total{status=\"2xx\"} ";
    return new String(mirror.get("/metrics").body()).lines().filter(l -> l.startsWith(series)).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length()).trim())).orElse(0.0);
  }

  /** How many replicas' caches hold the blob's file (copies not kept are never installed). */
  long holders(String digest) {
    String hex = digest.substring(digest.indexOf(':') + 1);
    return replicas.stream()
        .filter(r -> CacheContents.files(r.mirror().cacheDir()).stream()
            .anyMatch(f -> f.getFileName().toString().equals(hex)))
        .count();
  }
}
