package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import io.registrymirror.testing.Required;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real client end to end: {@code skopeo copy} through the mirror into {@code dir:} layouts,
 * every digest compared with what was pushed upstream.
 */
class SkopeoTest extends MirrorTestBase {

  private static final Path SKOPEO = Path.of("/usr/bin/skopeo");

  private static Image image;
  private static Index index;

  @BeforeAll
  static void seed() throws Exception {
    Required.skopeo();
    ImageSeeder seeder = new ImageSeeder(registry.url());
    image = seeder.pushImage("skopeo/layers", "1.0", 4, 2_000_000, "docker");
    index = seeder.pushIndex("skopeo/multi", "2.0",
        List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64/v8"), Platform.of("linux/s390x")));
  }

  /** Every tag pull asks upstream, so that an offline pull cannot pass as a fresh cache hit. */
  @Override
  protected String upstreamYaml() {
    return "tagTtl: 0s";
  }

  @Test
  void copiesAMultiLayerImage(@TempDir Path out) throws Exception {
    Path dir = out.resolve("image");
    copy("skopeo/layers:1.0", dir);

    assertThat(Files.readAllBytes(dir.resolve("manifest.json"))).isEqualTo(image.manifest());
    assertBlobs(dir, image);
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(image.blobs().size());

    // A second copy is served from the cache: upstream sees no blob request.
    upstream.clear();
    copy("skopeo/layers:1.0", out.resolve("again"));
    assertBlobs(out.resolve("again"), image);
    assertThat(upstream.count("GET", ".*/blobs/.*")).isZero();
  }

  @Test
  void copiesEveryPlatformOfAnIndex(@TempDir Path out) throws Exception {
    Path dir = out.resolve("index");
    copy("skopeo/multi:2.0", dir, "--all");

    assertThat(Files.readAllBytes(dir.resolve("manifest.json"))).isEqualTo(index.body());
    for (Image child : index.children()) {
      String hex = child.manifestDigest().substring("sha256:".length());
      Path manifest = dir.resolve(hex + ".manifest.json");
      assertThat(manifest).exists();
      assertThat(ImageSeeder.sha256(manifest)).isEqualTo(child.manifestDigest());
      assertBlobs(dir, child);
    }
  }

  /**
   * With the upstream gone, everything pulled before is still pulled, tags answered stale; a tag
   * never seen fails quickly with 503, never a hang.
   */
  @Test
  void pullsEverythingPulledBeforeWhileUpstreamIsDown(@TempDir Path out) throws Exception {
    copy("skopeo/layers:1.0", out.resolve("before-image"));
    copy("skopeo/multi:2.0", out.resolve("before-index"), "--all");
    registry.stop();
    try {
      Path offline = out.resolve("offline-image");
      copy("skopeo/layers:1.0", offline);
      assertThat(Files.readAllBytes(offline.resolve("manifest.json"))).isEqualTo(image.manifest());
      assertBlobs(offline, image);
      Path multi = out.resolve("offline-index");
      copy("skopeo/multi:2.0", multi, "--all");
      assertThat(Files.readAllBytes(multi.resolve("manifest.json"))).isEqualTo(index.body());
      for (Image child : index.children()) {
        assertBlobs(multi, child);
      }
      assertThat(mirror.head("/v2/skopeo/layers/manifests/1.0", "Accept", image.mediaType())
          .headers().firstValue("X-Mirror-Cache")).hasValue("stale");
      String metrics = new String(mirror.get("/metrics").body(), StandardCharsets.UTF_8);
      assertThat(metrics.lines().filter(l -> l.startsWith("mirror_requests_total{kind=\"manifest\",result=\"stale\"}"))
          .map(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst())
          .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(3));

      long started = System.nanoTime();
      HttpResponse<byte[]> unknown = mirror.get("/v2/skopeo/layers/manifests/never-pulled", "Accept", image.mediaType());
      assertThat(unknown.statusCode()).isEqualTo(503);
      assertThat(new String(unknown.body(), StandardCharsets.UTF_8)).contains("UNAVAILABLE");
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(5));
    } finally {
      registry.restart();
    }
  }

  private void copy(String reference, Path dir, String... options) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(SKOPEO.toString(), "--insecure-policy", "copy",
        "--src-tls-verify=false", "--retry-times", "0"));
    command.addAll(List.of(options));
    command.add("docker://" + mirror.hostPort() + "/" + reference);
    command.add("dir:" + dir);
    Path log = Files.createTempFile("skopeo-", ".log");
    Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("skopeo finished").isTrue();
    assertThat(p.exitValue()).as("skopeo exit status; output:%n%s", Files.readString(log)).isZero();
    Files.delete(log);
  }

  /** skopeo names each blob file by its digest's hex; its content must hash to it. */
  private static void assertBlobs(Path dir, Image img) throws IOException {
    for (String digest : img.blobs().keySet()) {
      Path blob = dir.resolve(digest.substring("sha256:".length()));
      assertThat(blob).exists();
      assertThat(ImageSeeder.sha256(blob)).isEqualTo(digest);
      assertThat(Files.readAllBytes(blob)).isEqualTo(img.blobs().get(digest));
    }
  }
}
