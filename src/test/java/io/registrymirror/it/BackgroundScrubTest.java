package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.TestLimits;
import io.vertx.core.Vertx;
import java.io.RandomAccessFile;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The running mirror's background scrub ({@code cache.scrubInterval}): a cached blob whose bytes
 * rot on the disk is removed and forgotten, and the next pull fetches it again from upstream,
 * correct.
 */
class BackgroundScrubTest extends MirrorTestBase {

  private static Image image;

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 2, 300_000, "docker");
  }

  @Test
  void aCorruptedBlobIsRemovedAndFetchedAgainOnTheNextPull(Vertx vertx, @TempDir Path cache) throws Exception {
    mirror.close();
    mirror = MirrorUnderTest.startWithConfig(vertx, """
        listen: 127.0.0.1:0
        cache:
          dir: %s
          scrubInterval: 200ms
        upstreams:
          local:
            url: %s
            default: true
        %s
        """.formatted(cache, upstream.url(), TestLimits.upstreamTimeoutsYaml().indent(4)), cache);
    String layer = image.layerDigests().get(0);
    String other = image.layerDigests().get(1);
    byte[] expected = image.blobs().get(layer);
    assertThat(mirror.get("/v2/team/app/blobs/" + layer).body()).isEqualTo(expected);
    assertThat(mirror.get("/v2/team/app/blobs/" + other).statusCode()).isEqualTo(200);
    Path file = mirror.blobFile(layer);
    eventually(Duration.ofSeconds(10), () -> Files.exists(file), "the blob to be cached");

    // One bit flipped in place, as a failing disk would: same file, same size.
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.seek(expected.length / 2);
      raf.write(expected[expected.length / 2] ^ 0x01);
    }
    Path stray = Files.writeString(cache.resolve("blobs").resolve("left-by-hand.txt"), "x");
    upstream.clear();

    eventually(Duration.ofSeconds(30), () -> !Files.exists(file) && !Files.exists(stray),
        "the scrub to remove the corrupted blob and the stray file");
    assertThat(mirror.blobFile(other)).exists();

    HttpResponse<byte[]> again = mirror.get("/v2/team/app/blobs/" + layer);
    assertThat(again.statusCode()).isEqualTo(200);
    assertThat(again.body()).isEqualTo(expected);
    assertThat(upstream.count("GET", ".*/blobs/" + layer)).isEqualTo(1);
    eventually(Duration.ofSeconds(10), () -> Files.exists(file), "the blob to be cached again");
    assertThat(ImageSeeder.sha256(file)).isEqualTo(layer);
    assertThat(mirror.get("/v2/team/app/blobs/" + other).statusCode()).isEqualTo(200);
    assertThat(upstream.count("GET", ".*/blobs/" + other)).isZero();

    String metrics = new String(mirror.get("/metrics").body(), StandardCharsets.UTF_8);
    assertThat(metrics).contains("mirror_cache_scrub_removed_total{kind=\"blob\"} 1.0")
        .contains("mirror_cache_scrub_removed_total{kind=\"stray\"} 1.0")
        .containsPattern("mirror_cache_scrub_files_total [1-9]")
        .containsPattern("mirror_cache_scrub_checked_bytes_total [1-9]");
  }
}
