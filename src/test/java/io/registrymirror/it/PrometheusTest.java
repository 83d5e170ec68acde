package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Exec;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.ScratchDir;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What an operator's Prometheus sees: a real Prometheus server scrapes a mirror process while
 * skopeo pulls an image through it, cold then warm, and PromQL answers with the hit ratio and the
 * bytes served. The scrape is also what {@code promtool check metrics} lints, and is kept in
 * {@code target/metrics-scrape.txt} for the dashboard's check.
 */
class PrometheusTest {

  private static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
  private static final Path PROMTOOL = Path.of("/usr/bin/promtool");
  private static final Path SKOPEO = Path.of("/usr/bin/skopeo");
  private static final Duration RUN = Duration.ofSeconds(120);
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private static ScratchDir dir;
  private static ReferenceRegistry registry;
  private static MirrorProcess mirror;
  private static Process prometheus;
  private static String prometheusUrl;
  private static Image image;

  @BeforeAll
  static void start() throws Exception {
    Required.referenceRegistry();
    Required.skopeo();
    Required.tool(Files.isExecutable(PROMETHEUS) && Files.isExecutable(PROMTOOL), "prometheus and promtool",
        "prometheus");
    dir = ScratchDir.create("prometheus-test");
    registry = ReferenceRegistry.start();
    image = new ImageSeeder(registry.url()).pushImage("prom/app", "1.0", 3, 300_000, "oci");
    mirror = MirrorProcess.start(registry.url(), dir.path().resolve("cache"), dir.path(), List.of(),
        "tags:\n  refreshInterval: 1h\n");
    int port = freePort();
    prometheusUrl = "http://127.0.0.1:" + port;
    Path config = dir.path().resolve("prometheus.yml");
    Files.writeString(config, """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: registry-mirror
            static_configs:
              - targets: ['%s']
        """.formatted(mirror.hostPort()));
    prometheus = new ProcessBuilder(PROMETHEUS.toString(), "--config.file=" + config,
        "--storage.tsdb.path=" + dir.path().resolve("tsdb"), "--web.listen-address=127.0.0.1:" + port)
        .redirectErrorStream(true).redirectOutput(dir.path().resolve("prometheus.log").toFile()).start();
    eventually(Duration.ofSeconds(30), () -> query("up{job=\"registry-mirror\"}").orElse(0) == 1,
        "Prometheus to scrape the mirror");
  }

  @AfterAll
  static void stop() throws Exception {
    if (prometheus != null) {
      prometheus.destroy();
      prometheus.waitFor(10, TimeUnit.SECONDS);
    }
    if (mirror != null) {
      mirror.close();
    }
    if (registry != null) {
      registry.close();
    }
    if (dir != null) {
      dir.close();
    }
  }

  @Test
  void promQlShowsTheHitRatioAndTheBytesServedOfARealPull() throws Exception {
    long imageBytes = image.manifest().length + image.blobs().values().stream().mapToLong(b -> b.length).sum();
    pull(dir.path().resolve("cold"));
    pull(dir.path().resolve("warm"));

    // Every byte of the image went out twice: once as it came from upstream, once from the cache.
    eventually(Duration.ofSeconds(30),
        () -> query("sum(mirror_served_bytes_total{source=\"cache\"})").orElse(-1) == imageBytes,
        "Prometheus to see the warm pull's bytes");
    assertThat(query("sum(mirror_served_bytes_total{source=\"upstream\"})")).hasValue(imageBytes);
    // Each blob was a miss once and a hit once.
    assertThat(query("sum(mirror_requests_total{kind=\"blob\",result=\"hit\"})"
        + " / sum(mirror_requests_total{kind=\"blob\",result=~\"hit|miss\"})")).hasValue(0.5);
    assertThat(query("sum(mirror_upstream_received_bytes_total)"))
        .hasValue((double) image.blobs().values().stream().mapToLong(b -> b.length).sum());
    // Vert.x's own meters and the JVM's come through the same scrape.
    assertThat(query("sum(vertx_http_server_requests_total)").orElse(0)).isPositive();
    assertThat(query("sum(jvm_memory_used_bytes{area=\"heap\"})").orElse(0)).isPositive();
  }

  @Test
  void promtoolAcceptsTheScrape() throws Exception {
    String scrape = HTTP.send(HttpRequest.newBuilder(URI.create(mirror.url() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    Path file = Path.of("target", "metrics-scrape.txt");
    Files.writeString(file, scrape);
    Exec.Result lint = Exec.attempt(RUN, Map.of(), List.of("sh", "-c", PROMTOOL + " check metrics < " + file));
    assertThat(lint.exitCode()).as("promtool check metrics:%n%s%s", lint.stdout(), lint.stderr()).isZero();
  }

  private static void pull(Path into) {
    Exec.run(RUN, Map.of(), List.of(SKOPEO.toString(), "--insecure-policy", "copy", "--src-tls-verify=false",
        "--retry-times", "0", "docker://" + mirror.hostPort() + "/prom/app:1.0", "dir:" + into));
  }

  /** The value of a PromQL expression that yields one sample, or empty when it yields none. */
  private static OptionalDouble query(String promql) {
    try {
      HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(prometheusUrl + "/api/v1/query?query="
          + URLEncoder.encode(promql, StandardCharsets.UTF_8))).build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 503) {
        return OptionalDouble.empty(); // still starting
      }
      JsonObject body = new JsonObject(r.body());
      assertThat(body.getString("status")).as("%s: %s", promql, r.body()).isEqualTo("success");
      JsonArray result = body.getJsonObject("data").getJsonArray("result");
      return result.isEmpty() ? OptionalDouble.empty()
          : OptionalDouble.of(Double.parseDouble(result.getJsonObject(0).getJsonArray("value").getString(1)));
    } catch (IOException e) {
      return OptionalDouble.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
