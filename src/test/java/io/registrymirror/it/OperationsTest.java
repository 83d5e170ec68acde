package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What an operator watches: health endpoints and Prometheus metrics that reflect real traffic. */
class OperationsTest extends MirrorTestBase {

  private static Image image;

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("ops/app", "1.0", 2, 50_000, "docker");
  }

  @Test
  void healthEndpointsAnswer() {
    HttpResponse<byte[]> live = mirror.get("/healthz");
    assertThat(live.statusCode()).isEqualTo(200);
    HttpResponse<byte[]> ready = mirror.get("/readyz");
    assertThat(ready.statusCode()).isEqualTo(200);
    assertThat(new JsonObject(new String(ready.body())).getLong("cacheFreeBytes")).isPositive();
  }

  @Test
  void versionCheckIsAnonymousAndNamesTheApi() {
    HttpResponse<byte[]> v2 = mirror.get("/v2/");
    assertThat(v2.statusCode()).isEqualTo(200);
    assertThat(v2.headers().firstValue("Docker-Distribution-API-Version")).hasValue("registry/2.0");
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void metricsCountHitsMissesAndUpstreamTraffic() {
    String layer = image.layerDigests().get(0);
    long size = image.blobs().get(layer).length;
    assertThat(mirror.get("/v2/ops/app/blobs/" + layer).statusCode()).isEqualTo(200);
    // The client has every byte once they are verified; the file is renamed into place just after.
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached");
    assertThat(mirror.get("/v2/ops/app/blobs/" + layer).statusCode()).isEqualTo(200);
    assertThat(mirror.get("/v2/ops/app/manifests/nope").statusCode()).isEqualTo(404);
    upstream.fault(Forwarder.matching("HEAD", ".*/manifests/failing"), Fault.status(500, "", Map.of()));
    assertThat(mirror.get("/v2/ops/app/manifests/failing").statusCode()).isEqualTo(503);

    String metrics = new String(mirror.get("/metrics").body());
    assertThat(value(metrics, "mirror_requests_total{kind=\"blob\",result=\"miss\"}")).isEqualTo(1);
    assertThat(value(metrics, "mirror_requests_total{kind=\"blob\",result=\"hit\"}")).isEqualTo(1);
    // The client's mistakes are told apart from the mirror's and upstream's failures.
    assertThat(value(metrics, "mirror_requests_total{kind=\"manifest\",result=\"client_error\"}")).isEqualTo(1);
    assertThat(value(metrics, "mirror_requests_total{kind=\"manifest\",result=\"error\"}")).isEqualTo(1);
    assertThat(value(metrics, "mirror_fills_total{result=\"ok\"}")).isEqualTo(1);
    assertThat(value(metrics, "mirror_upstream_received_bytes_total{upstream=\"local\"}")).isEqualTo(size);
    assertThat(value(metrics,
        "mirror_upstream_requests_seconds_count{method=\"GET\",status=\"2xx\",upstream=\"local\"}")).isEqualTo(1);
    assertThat(value(metrics,
        "mirror_upstream_requests_seconds_count{method=\"HEAD\",status=\"4xx\",upstream=\"local\"}")).isEqualTo(1);
    assertThat(metrics).contains("jvm_memory_used_bytes");
    // The layer's bytes went out twice: as they came from upstream, then from the cache.
    assertThat(value(metrics, "mirror_served_bytes_total{source=\"upstream\"}")).isEqualTo(size);
    assertThat(value(metrics, "mirror_served_bytes_total{source=\"cache\"}")).isEqualTo(size);
  }

  @Test
  void manifestBytesCountBySource() {
    long size = image.manifest().length;
    assertThat(mirror.get("/v2/ops/app/manifests/1.0").statusCode()).isEqualTo(200);
    assertThat(mirror.get("/v2/ops/app/manifests/" + image.manifestDigest()).statusCode()).isEqualTo(200);
    String metrics = new String(mirror.get("/metrics").body());
    assertThat(value(metrics, "mirror_served_bytes_total{source=\"upstream\"}")).isEqualTo(size);
    assertThat(value(metrics, "mirror_served_bytes_total{source=\"cache\"}")).isEqualTo(size);
  }

  @Test
  void everyCounterOfAnUpstreamExistsBeforeItsFirstRequest() {
    String metrics = new String(mirror.get("/metrics").body());
    for (String series : List.of(
        "mirror_served_bytes_total{source=\"cache\"}",
        "mirror_served_bytes_total{source=\"upstream\"}",
        "mirror_requests_total{kind=\"referrers\",result=\"stale\"}",
        "mirror_upstream_requests_seconds_count{method=\"GET\",status=\"5xx\",upstream=\"local\"}",
        "mirror_upstream_requests_seconds_count{method=\"HEAD\",status=\"none\",upstream=\"local\"}",
        "mirror_upstream_received_bytes_total{upstream=\"local\"}",
        "mirror_tag_moves_total{seen=\"refresh\",upstream=\"local\"}",
        "mirror_tag_refreshes_total{result=\"failed\",upstream=\"local\"}",
        "mirror_tag_stale_serves_total{upstream=\"local\"}",
        "mirror_cache_evictions_total{kind=\"blob\"}",
        "mirror_fills_total{result=\"failed\"}")) {
      assertThat(value(metrics, series)).as(series).isZero();
    }
    // Unknown until upstream sends a quota header; a loopback registry never does.
    assertThat(value(metrics, "mirror_upstream_ratelimit_remaining{upstream=\"local\"}")).isNaN();
    // The latency histogram, in the buckets every upstream shares.
    assertThat(metrics).contains(
        "mirror_upstream_requests_seconds_bucket{method=\"GET\",status=\"2xx\",upstream=\"local\",le=\"0.1\"} 0");
  }

  @Test
  void everyMetricSaysWhatItMeasures() {
    assertThat(mirror.get("/v2/ops/app/manifests/1.0").statusCode()).isEqualTo(200);
    String metrics = new String(mirror.get("/metrics").body());
    List<String> help = metrics.lines().filter(l -> l.startsWith("# HELP ")).toList();
    assertThat(help).anyMatch(l -> l.startsWith("# HELP mirror_fills_active "));
    assertThat(help).allSatisfy(l -> assertThat(l.split(" ", 4)).as(l).hasSize(4)
        .satisfies(parts -> assertThat(parts[3]).as(l).isNotBlank()));
  }

  @Test
  void metricsReportTheCacheDisksFreeSpace() throws Exception {
    FileStore disk = Files.getFileStore(mirror.cacheDir());
    // Read on a worker as the mirror starts; a scrape shows the last reading.
    eventually(Duration.ofSeconds(10),
        () -> value(new String(mirror.get("/metrics").body()), "mirror_cache_disk_free_bytes") >= 0,
        "a first reading of the cache disk");
    String metrics = new String(mirror.get("/metrics").body());
    assertThat(value(metrics, "mirror_cache_disk_size_bytes")).isEqualTo((double) disk.getTotalSpace());
    // Other writers on the same disk move it a little between the two readings.
    assertThat(value(metrics, "mirror_cache_disk_free_bytes"))
        .isCloseTo((double) disk.getUsableSpace(), within(1024.0 * 1024 * 1024));
  }

  private static double value(String metrics, String series) {
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
        .orElseThrow(() -> new AssertionError("no series " + series + " in:\n" + metrics));
  }
}
