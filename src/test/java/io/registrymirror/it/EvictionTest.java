package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.TestLimits;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cache.maxSize} against the real registry: pulling several times the bound leaves the
 * cache within it on disk, every pull still gets the exact bytes, evictions are counted and
 * logged, and a pinned tag's image survives the pressure whole.
 */
class EvictionTest extends MirrorTestBase {

  private static final long BOUND = 6L << 20;
  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  private static Image pinned;
  private static final List<Image> others = new ArrayList<>();

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    pinned = seeder.pushImage("team/pinned", "v1", 2, 1_000_000, "docker");
    for (int i = 0; i < 8; i++) {
      others.add(seeder.pushImage("team/other" + i, "1.0", 2, 1_000_000, "docker"));
    }
  }

  private void restartBounded(Vertx vertx, Path cache) {
    mirror.close();
    mirror = MirrorUnderTest.startWithConfig(vertx, """
        listen: 127.0.0.1:0
        cache:
          dir: %s
          maxSize: %dB
        upstreams:
          local:
            url: %s
            default: true
        %s
        tags:
          rules:
            - repositories: team/pinned
              tags: v1
              pin: true
        """.formatted(cache, BOUND, upstream.url(), TestLimits.upstreamTimeoutsYaml().indent(4)), cache);
  }

  @Test
  void pullingSeveralTimesTheBoundKeepsTheCacheWithinItAndEveryPullExact(Vertx vertx, @TempDir Path cache)
      throws Exception {
    restartBounded(vertx, cache);
    try (LogCapture events = LogCapture.start()) {
      for (int round = 0; round < 2; round++) {
        for (Image image : others) {
          pullByTag(image);
        }
      }
      eventually(WAIT, () -> cached(cache) <= BOUND, "the cache within its bound on disk");
      eventually(WAIT, () -> events.lines().stream().anyMatch(l -> l.contains("event=cache.evicted")),
          "an eviction run logged");
    }
    String metrics = new String(mirror.get("/metrics").body());
    assertThat(counter(metrics, "mirror_cache_evictions_total\\{kind=\"blob\"\\}")).isGreaterThan(0);
    assertThat(counter(metrics, "mirror_cache_bytes\\{kind=\"blob\"\\}")).isLessThanOrEqualTo(BOUND);
    assertThat(counter(metrics, "mirror_cache_max_bytes")).isEqualTo(BOUND);
    // Two rounds of 16 MB through a 6 MiB cache: blobs were fetched again, as they must be.
    assertThat(upstream.count("GET", ".*/blobs/.*")).isGreaterThan(others.size() * 3);
  }

  @Test
  void aPinnedTagsImageSurvivesPressureWhole(Vertx vertx, @TempDir Path cache) throws Exception {
    restartBounded(vertx, cache);
    pullByTag(pinned);
    for (int round = 0; round < 3; round++) {
      for (Image image : others) {
        pullByTag(image);
      }
    }
    eventually(WAIT, () -> cached(cache) <= BOUND + pinnedBytes(), "the others evicted down to the bound");
    for (String blob : pinned.blobs().keySet()) {
      assertThat(mirror.blobFile(blob)).as("pinned blob %s", blob).exists();
    }
    assertThat(manifestFile(cache, pinned.manifestDigest())).exists();
    upstream.clear();
    pullByTag(pinned);
    assertThat(upstream.count("GET", ".*/blobs/.*")).as("pinned blobs fetched again").isZero();
  }

  /** A client's pull: the manifest by tag, then every blob, each checked against upstream's bytes. */
  private void pullByTag(Image image) {
    HttpResponse<byte[]> manifest = mirror.get("/v2/" + image.repo() + "/manifests/" + image.tag(), "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (Map.Entry<String, byte[]> blob : image.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get("/v2/" + image.repo() + "/blobs/" + blob.getKey());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(ImageSeeder.sha256(got.body())).isEqualTo(blob.getKey());
    }
  }

  private static long pinnedBytes() {
    return pinned.blobs().values().stream().mapToLong(b -> b.length).sum() + pinned.manifest().length;
  }

  /** Bytes of blobs and manifests on disk, as the bound counts them. */
  private static long cached(Path cache) {
    return bytesUnder(cache.resolve("blobs")) + bytesUnder(cache.resolve("manifests"));
  }

  private static long bytesUnder(Path dir) {
    try (Stream<Path> files = Files.walk(dir)) {
      return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Path manifestFile(Path cache, String digest) {
    String hex = digest.substring("sha256:".length());
    return cache.resolve("manifests/sha256").resolve(hex.substring(0, 2)).resolve(hex);
  }

  private static double counter(String metrics, String name) {
    Matcher m = Pattern.compile("(?m)^" + name + " (\\S+)$").matcher(metrics);
    return m.find() ? Double.parseDouble(m.group(1)) : -1;
  }
}
