package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Exec;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import io.registrymirror.testing.RawHttp;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.ScratchDir;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cache on a small file system that runs out of space while blobs are pulled: every client
 * still gets the exact bytes, the mirror stays ready and says once that writes fail, nothing is
 * left behind, and caching works again by itself once there is room.
 */
@ExtendWith(VertxExtension.class)
@Timeout(180)
class DiskFullTest {

  private static final long DISK = 16L << 20;
  private static final long BIG = 24L << 20;
  private static final long SMALL = 4L << 20;
  /** Room on the disk, and more than a client's socket buffers hold. */
  private static final long MEDIUM = 12L << 20;
  /** What a fill that lost its disk may hold (its usual bound), and one upstream chunk over it. */
  private static final long FILL_HOLD = (6L << 20) + (64 << 10);
  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  @TempDir
  static Path files;
  private static ReferenceRegistry registry;
  private static String big;
  private static String small;
  private static String medium;
  private static Image image;

  private ScratchDir scratch;
  private Forwarder upstream;
  private MirrorUnderTest mirror;

  @BeforeAll
  static void seed() throws Exception {
    Required.referenceRegistry();
    Required.root("mounting a small tmpfs");
    registry = ReferenceRegistry.start();
    ImageSeeder seeder = new ImageSeeder(registry.url());
    big = seeder.pushBlob("full/big", ImageSeeder.randomFile(files, BIG, 21));
    small = seeder.pushBlob("full/small", ImageSeeder.randomFile(files, SMALL, 22));
    medium = seeder.pushBlob("full/medium", ImageSeeder.randomFile(files, MEDIUM, 23));
    image = seeder.pushImage("full/app", "1.0", 1, 200_000, "docker");
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
    }
  }

  @BeforeEach
  void start(Vertx vertx) throws IOException {
    scratch = ScratchDir.create("mirror-disk-");
    Path cache = scratch.dir("cache");
    Required.that(run("mount", "-t", "tmpfs", "-o", "size=" + DISK, "tmpfs", cache.toString()), "mounting a tmpfs is not allowed here (needs root with CAP_SYS_ADMIN)");
    upstream = Forwarder.start(registry.port());
    mirror = MirrorUnderTest.start(vertx, upstream.url(), cache);
  }

  @AfterEach
  void stop() {
    if (mirror != null) {
      mirror.close();
    }
    if (upstream != null) {
      upstream.close();
    }
    scratch.close();
  }

  @Test
  void aDiskThatFillsDuringAPullStillServesEveryClientAndCachingResumes() throws Exception {
    String path = "/v2/full/big/blobs/" + big;
    ExecutorService clients = Executors.newFixedThreadPool(2);
    try (LogCapture log = LogCapture.start()) {
      // One client reads a little and stops: it stays far behind what reaches the disk, so it
      // reads the start from the file and holds the rest in memory once the disk is full.
      SlowClient behind = SlowClient.start(mirror, path);
      Future<Received> first = clients.submit(() -> mirror.fetch(path));
      Future<Received> second = clients.submit(() -> mirror.fetch(path));

      eventually(Duration.ofSeconds(60), () -> blobWriteFailures() >= 1 || first.isDone(),
          "the disk to fill up under the pull");
      assertThat(first.isDone()).as("a client cut off when the disk filled up").isFalse();
      // The mirror still serves, so it stays ready; the body says what is wrong with the cache.
      HttpResponse<byte[]> ready = mirror.get("/readyz");
      assertThat(ready.statusCode()).as(new String(ready.body())).isEqualTo(200);
      // The client behind paces the upstream: memory holds what it still needs, and no more.
      assertThat(gauge("mirror_fill_memory_bytes")).isLessThanOrEqualTo(FILL_HOLD);
      // A client that comes now cannot join a fill that is not on disk: it gets the blob all the same.
      HttpResponse<byte[]> late = mirror.get(path);
      assertThat(late.statusCode()).isEqualTo(200);
      assertThat(ImageSeeder.sha256(late.body())).isEqualTo(big);

      assertThat(behind.readRest(BIG)).isEqualTo(big);
      assertThat(first.get().complete(BIG, big)).as("%s", first.get()).isTrue();
      assertThat(second.get().complete(BIG, big)).as("%s", second.get()).isTrue();

      assertThat(blobWriteFailures()).isEqualTo(1);
      assertThat(log.lines()).filteredOn(l -> l.contains("event=cache.write.failing")).hasSize(1);
      assertThat(Files.exists(mirror.blobFile(big))).isFalse();
      eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "the partial file to be deleted");

      // The space is back: the next blob is cached as ever, and the log says writes work again.
      upstream.clear();
      assertThat(mirror.fetch("/v2/full/small/blobs/" + small).complete(SMALL, small)).isTrue();
      eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(small)), "the blob to be cached");
      assertThat(mirror.fetch("/v2/full/small/blobs/" + small).complete(SMALL, small)).isTrue();
      assertThat(upstream.count("GET", ".*/blobs/" + small)).isEqualTo(1);
      assertThat(log.lines()).filteredOn(l -> l.contains("event=cache.write.recovered")).hasSize(1);
    } finally {
      clients.shutdownNow();
    }
  }

  @Test
  void manifestsAndBlobsArePulledFromAFullDisk() throws Exception {
    Path filler = mirror.cacheDir().resolve("filler");
    fillUp(filler);
    String layer = image.layerDigests().get(0);
    try (LogCapture log = LogCapture.start()) {
      HttpResponse<byte[]> manifest = mirror.get("/v2/full/app/manifests/1.0", "Accept", DOCKER);
      assertThat(manifest.statusCode()).as(new String(manifest.body())).isEqualTo(200);
      assertThat(manifest.body()).isEqualTo(image.manifest());
      HttpResponse<byte[]> blob = mirror.get("/v2/full/app/blobs/" + layer);
      assertThat(blob.statusCode()).isEqualTo(200);
      assertThat(blob.body()).isEqualTo(image.blobs().get(layer));

      HttpResponse<byte[]> ready = mirror.get("/readyz");
      assertThat(ready.statusCode()).as(new String(ready.body())).isEqualTo(200);
      assertThat(new JsonObject(new String(ready.body())).getLong("cacheFreeBytes")).isLessThan(64L << 10);
      assertThat(value(metrics(), "mirror_cache_write_failures_total{what=\"manifest\"}")).isGreaterThanOrEqualTo(1);
      assertThat(blobWriteFailures()).isEqualTo(1);
      assertThat(log.lines()).filteredOn(l -> l.contains("event=cache.write.failing")).hasSize(1);
      assertThat(Files.exists(mirror.blobFile(layer))).isFalse();
      eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "the partial file to be deleted");
    }
    Files.delete(filler);
    assertThat(mirror.get("/v2/full/app/blobs/" + layer).body()).isEqualTo(image.blobs().get(layer));
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached");
  }

  @Test
  void aBlobWhoseFileCannotBePutInPlaceIsStillServed() throws Exception {
    String path = "/v2/full/medium/blobs/" + medium;
    Path blobs = Files.createDirectories(mirror.cacheDir().resolve("blobs"));
    // tmp/ takes the file, blobs/ cannot: the verified blob cannot be renamed into place.
    Required.that(run("mount", "--bind", blobs.toString(), blobs.toString()), "bind mounts are not allowed here");
    Required.that(run("mount", "-o", "remount,bind,ro", blobs.toString()), "read-only remounts are not allowed here");
    try (LogCapture log = LogCapture.start()) {
      SlowClient behind = SlowClient.start(mirror, path);
      eventually(Duration.ofSeconds(30), () -> blobWriteFailures() >= 1
          || log.lines().stream().anyMatch(l -> l.contains("event=blob.fill.failed")), "the blob's install to fail");
      assertThat(behind.readRest(MEDIUM)).as("the blob, whole, to a client still reading it").isEqualTo(medium);
      assertThat(blobWriteFailures()).isEqualTo(1);
      eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "the file to be deleted");
    } finally {
      run("umount", blobs.toString());
    }
    assertThat(mirror.fetch(path).complete(MEDIUM, medium)).isTrue();
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(medium)), "the blob to be cached");
  }

  private static boolean run(String... command) {
    return Exec.attempt(Duration.ofSeconds(10), Map.of(), List.of(command)).exitCode() == 0;
  }

  /**
   * A client on a small socket buffer that reads the first bytes of a blob and then stops
   * until told to read on: the mirror's sender for it stays far behind the fill.
   */
  private record SlowClient(Socket socket, InputStream body, MessageDigest hash, long[] count) {

    static SlowClient start(MirrorUnderTest mirror, String path) throws Exception {
      Socket socket = new Socket();
      socket.setReceiveBufferSize(64 << 10);
      socket.connect(new InetSocketAddress("127.0.0.1", URI.create(mirror.url()).getPort()));
      socket.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: " + mirror.hostPort() + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      InputStream body = new BufferedInputStream(socket.getInputStream());
      assertThat(RawHttp.line(body)).isEqualTo("HTTP/1.1 200 OK");
      while (!RawHttp.line(body).isEmpty()) {
        // the headers
      }
      SlowClient client = new SlowClient(socket, body, MessageDigest.getInstance("SHA-256"), new long[1]);
      client.count[0] = read(body, client.hash, 64 << 10);
      return client;
    }

    /** Reads on to {@code size} bytes, or the end of the stream; returns the digest of all it read. */
    String readRest(long size) throws IOException {
      try (socket) {
        count[0] += read(body, hash, size - count[0]);
      }
      assertThat(count[0]).as("bytes received before the end of the stream").isEqualTo(size);
      return "sha256:" + HexFormat.of().formatHex(hash.digest());
    }
  }

  /** Writes zeros into {@code file} until the file system has no room left. */
  private static void fillUp(Path file) throws IOException {
    byte[] zeros = new byte[64 << 10];
    try (OutputStream out = Files.newOutputStream(file)) {
      while (true) {
        out.write(zeros);
      }
    } catch (IOException e) {
      assertThat(e.getMessage()).contains("No space left");
    }
  }

  /** Reads up to {@code max} bytes from {@code in} into {@code hash}; returns how many. */
  private static long read(InputStream in, MessageDigest hash, long max) throws IOException {
    byte[] buf = new byte[64 << 10];
    long total = 0;
    while (total < max) {
      int n = in.read(buf, 0, (int) Math.min(buf.length, max - total));
      if (n < 0) {
        break;
      }
      hash.update(buf, 0, n);
      total += n;
    }
    return total;
  }

  private double blobWriteFailures() {
    return value(metrics(), "mirror_cache_write_failures_total{what=\"blob\"}");
  }

  private double gauge(String name) {
    return value(metrics(), name);
  }

  private String metrics() {
    return new String(mirror.get("/metrics").body());
  }

  private static double value(String metrics, String series) {
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
        .orElseThrow(() -> new AssertionError("no series " + series + " in:\n" + metrics));
  }
}
