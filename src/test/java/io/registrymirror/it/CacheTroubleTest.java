package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import io.registrymirror.testing.Required;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cache that goes wrong under the mirror: the disk turns read-only, a blob file is deleted by
 * hand, an upstream body breaks off. Pulls keep working, readiness tells the truth, and the log
 * says what happened once, at the right level.
 */
@Timeout(120)
class CacheTroubleTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final long BIG = 4L * 1024 * 1024;

  @TempDir
  static Path files;
  private static Image image;
  private static Image later;
  private static String big;

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    image = seeder.pushImage("trouble/app", "1.0", 1, 40_000, "docker");
    later = seeder.pushImage("trouble/app", "2.0", 1, 40_000, "docker");
    big = seeder.pushBlob("trouble/big", ImageSeeder.randomFile(files, BIG, 11));
  }

  @Test
  void aReadOnlyCacheStaysReadyAndSaysSo() throws Exception {
    assertThat(mirror.get("/readyz").statusCode()).isEqualTo(200);
    try (ReadOnly ro = ReadOnly.mount(mirror.cacheDir())) {
      // Root writes through file permissions: only a read-only mount stops it.
      assertThat(canWrite(mirror.cacheDir().resolve("tmp"))).as("a file written as root").isFalse();
      // Probe answers are kept a few seconds. The mirror still serves: it stays ready.
      eventually(Duration.ofSeconds(15), () -> !new JsonObject(new String(mirror.get("/readyz").body()))
          .getBoolean("cacheWritable"), "the cache seen read-only");
      assertThat(mirror.get("/readyz").statusCode()).isEqualTo(200);
    }
    eventually(Duration.ofSeconds(15), () -> new JsonObject(new String(mirror.get("/readyz").body()))
        .getBoolean("cacheWritable"), "the cache seen writable again");
  }

  @Test
  void aCacheUnwritableAtStartUpIsNotReadyUntilItIsButServes(Vertx vertx) throws Exception {
    Path dir = mirror.cacheDir().resolveSibling(mirror.cacheDir().getFileName() + "-late");
    MirrorUnderTest.start(vertx, upstreamUrl(), dir).close(); // lays the cache out
    ReadOnly ro = ReadOnly.mount(dir);
    try (MirrorUnderTest late = MirrorUnderTest.start(vertx, upstreamUrl(), dir)) {
      try {
        HttpResponse<byte[]> ready = late.get("/readyz");
        assertThat(ready.statusCode()).isEqualTo(503);
        JsonObject body = new JsonObject(new String(ready.body()));
        assertThat(body.getString("status")).isEqualTo("unwritable");
        assertThat(body.getBoolean("cacheWritable")).isFalse();
        assertThat(body.getString("error")).contains("Read-only file system");
        // Out of rotation, but whoever asks is served, past the cache.
        assertThat(late.get("/v2/trouble/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(image.manifest());
      } finally {
        ro.close();
      }
      // Probe answers are kept a few seconds.
      eventually(Duration.ofSeconds(15), () -> late.get("/readyz").statusCode() == 200, "ready once writable");
    }
  }

  @Test
  void manifestPullsWorkWithAReadOnlyCache() throws Exception {
    assertThat(mirror.get("/v2/trouble/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(image.manifest());
    try (LogCapture log = LogCapture.start(); ReadOnly ro = ReadOnly.mount(mirror.cacheDir())) {
      // A tag seen before, and one never pulled: its record and manifest cannot be written.
      for (int i = 0; i < 3; i++) {
        HttpResponse<byte[]> known = mirror.get("/v2/trouble/app/manifests/1.0", "Accept", DOCKER);
        assertThat(known.statusCode()).isEqualTo(200);
        assertThat(known.body()).isEqualTo(image.manifest());
        HttpResponse<byte[]> fresh = mirror.get("/v2/trouble/app/manifests/2.0", "Accept", DOCKER);
        assertThat(fresh.statusCode()).as(new String(fresh.body())).isEqualTo(200);
        assertThat(fresh.body()).isEqualTo(later.manifest());
      }
      HttpResponse<byte[]> byDigest = mirror.get("/v2/trouble/app/manifests/" + later.manifestDigest(),
          "Accept", DOCKER);
      assertThat(byDigest.body()).isEqualTo(later.manifest());

      String metrics = new String(mirror.get("/metrics").body());
      assertThat(value(metrics, "mirror_cache_write_failures_total{what=\"tag\"}")).isGreaterThanOrEqualTo(1);
      assertThat(value(metrics, "mirror_cache_write_failures_total{what=\"manifest\"}")).isGreaterThanOrEqualTo(1);
      // Said once for the whole episode, not once per pull.
      assertThat(log.lines()).filteredOn(l -> l.contains("event=cache.write.failing")).hasSize(1);
    }
  }

  @Test
  void blobPullsGoPastAReadOnlyCacheVerified() throws Exception {
    String layer = later.layerDigests().get(0);
    byte[] content = later.blobs().get(layer);
    String path = "/v2/trouble/app/blobs/" + layer;
    try (ReadOnly ro = ReadOnly.mount(mirror.cacheDir())) {
      // A body corrupted on the way is never received complete.
      upstream.fault(matching("GET", ".*/blobs/" + layer), Fault.flipByte(content.length / 2), 1);
      Received corrupt = mirror.fetch(path);
      assertThat(corrupt.complete(content.length, layer)).as("%s", corrupt).isFalse();
      assertThat(corrupt.bytes()).isLessThan(content.length);

      HttpResponse<byte[]> whole = mirror.get(path);
      assertThat(whole.statusCode()).isEqualTo(200);
      assertThat(whole.body()).isEqualTo(content);
      // A range cannot be cut from bytes that are not kept: the whole blob comes, as a 200 says.
      HttpResponse<byte[]> ranged = mirror.get(path, "Range", "bytes=10-19");
      assertThat(ranged.statusCode()).isEqualTo(200);
      assertThat(ranged.body()).isEqualTo(content);
      assertThat(upstream.count("GET", ".*/blobs/" + layer)).isEqualTo(3);
      assertThat(value(new String(mirror.get("/metrics").body()),
          "mirror_cache_write_failures_total{what=\"blob\"}")).isEqualTo(3);
    }
    assertThat(Files.exists(mirror.blobFile(layer))).isFalse();
    // Once the cache can take it again, the blob is cached as ever.
    assertThat(mirror.get(path).body()).isEqualTo(content);
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached");
  }

  @Test
  void aHeadSeesThatABlobFileWasDeletedByHand() throws Exception {
    String layer = image.layerDigests().get(0);
    byte[] content = cacheThenDelete(layer);

    HttpResponse<byte[]> head = mirror.head("/v2/trouble/app/blobs/" + layer);
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.headers().firstValueAsLong("Content-Length")).hasValue(content.length);
    assertThat(upstream.count("HEAD", ".*/blobs/" + layer)).as("HEAD asks upstream, the file being gone").isEqualTo(1);
  }

  /** Pulls a blob into the cache, then deletes its file as an operator might; forgets upstream's log. */
  private byte[] cacheThenDelete(String layer) throws IOException {
    byte[] content = image.blobs().get(layer);
    assertThat(mirror.get("/v2/trouble/app/blobs/" + layer).body()).isEqualTo(content);
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached");
    Files.delete(mirror.blobFile(layer));
    upstream.clear();
    return content;
  }

  @Test
  void aBrokenUpstreamBodyIsLoggedOnceAndNeverAsAnUnhandledError() throws Exception {
    upstream.fault(matching("GET", ".*/blobs/" + big), Fault.cutAfter(BIG / 2), 1);
    // By the time the mirror asks for the rest, upstream is failing.
    upstream.fault(matching("GET", ".*/blobs/" + big), Fault.status(503, "", Map.of()), 1);
    try (LogCapture events = LogCapture.start(); LogCapture warnings = LogCapture.warnings()) {
      Received broken = mirror.fetch("/v2/trouble/big/blobs/" + big);
      assertThat(broken.complete(BIG, big)).as("%s", broken).isFalse();
      eventually(Duration.ofSeconds(10),
          () -> events.lines().stream().anyMatch(l -> l.contains("event=blob.fill.failed")), "the failure logged");
      // Anything logged late by the libraries would come with the next exchange.
      assertThat(mirror.get("/v2/").statusCode()).isEqualTo(200);
      assertThat(events.lines()).filteredOn(l -> l.contains("event=blob.fill.failed"))
          .singleElement().satisfies(l -> assertThat(l).contains("level=warn", big));
      assertThat(warnings.lines()).noneMatch(l -> l.contains("level=error"));
      assertThat(warnings.lines()).noneMatch(l -> l.contains("Stream reset"));
    }
  }

  private static boolean canWrite(Path dir) {
    try {
      Files.delete(Files.createTempFile(dir, "root-", ".test"));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static double value(String metrics, String series) {
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
        .orElseThrow(() -> new AssertionError("no series " + series + " in:\n" + metrics));
  }

  /**
   * A directory made read-only for everyone, root included, by a read-only bind mount of it
   * onto itself; undone on close. Where mounts are not allowed the test fails, or skips in a
   * quick run.
   */
  private record ReadOnly(Path dir) implements AutoCloseable {

    static ReadOnly mount(Path dir) throws Exception {
      Required.that(run("mount", "--bind", dir.toString(), dir.toString()),
          "bind mounts are not allowed here (needs root with CAP_SYS_ADMIN)");
      boolean readOnly = run("mount", "-o", "remount,bind,ro", dir.toString());
      if (!readOnly) {
        run("umount", dir.toString());
        Required.that(readOnly, "read-only remounts are not allowed here");
      }
      return new ReadOnly(dir);
    }

    @Override
    public void close() throws Exception {
      assertThat(run("umount", dir.toString())).as("umount " + dir).isTrue();
    }

    private static boolean run(String... command) throws Exception {
      Process p;
      try {
        p = new ProcessBuilder(command).redirectErrorStream(true).start();
      } catch (IOException e) {
        return false;
      }
      p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
      return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
    }
  }
}
