package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kill -9} of the mirror process while it fills its cache, and at other moments: the next
 * process on the same cache directory empties {@code tmp/}, holds only files that match their
 * digests, and completes a full pull.
 */
@Timeout(120)
class CrashTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final long MIB = 1 << 20;

  /** Blobs of a few MiB to tens of MiB, by digest. */
  private static final Map<String, Long> BLOBS = new LinkedHashMap<>();
  private static String medium;
  private static String large;
  private static Image image;
  /** Fifty blobs of {@link #SMALL} bytes, to be filled at once. */
  private static final List<String> FIFTY = new ArrayList<>();
  private static final long SMALL = 2 * MIB;

  @TempDir
  static Path files;

  private final HttpClient http = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  /** The most a fill keeps in memory before writing it to its file. */
  private static final long BATCH = MIB;

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    long[] sizes = {3 * MIB, 8 * MIB, 20 * MIB, 40 * MIB};
    for (int i = 0; i < sizes.length; i++) {
      BLOBS.put(seeder.pushBlob("crash/big", ImageSeeder.randomFile(files, sizes[i], 100 + i)), sizes[i]);
    }
    List<String> digests = List.copyOf(BLOBS.keySet());
    medium = digests.get(2);
    large = digests.get(3);
    image = seeder.pushImage("crash/app", "1.0", 2, 200_000, "docker");
    for (int i = 0; i < 50; i++) {
      FIFTY.add(seeder.pushBlob("crash/many", ImageSeeder.randomFile(files, SMALL, 1000 + i)));
    }
  }

  @Test
  void killDuringFiftyConcurrentFills(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    CompletableFuture<Void> release = new CompletableFuture<>();
    for (String digest : FIFTY) {
      upstream.fault(matching("GET", ".*/blobs/" + digest), Fault.holdAfter(SMALL / 2, release), 1);
    }
    ExecutorService clients = Executors.newFixedThreadPool(FIFTY.size());
    try {
      List<Pull> pulls = new ArrayList<>();
      try (MirrorProcess first = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        for (String digest : FIFTY) {
          pulls.add(new Pull(digest, SMALL, clients.submit(() -> fetch(first, "/v2/crash/many/blobs/" + digest))));
        }
        // A fill's file is made before its upstream request is sent: fifty files, fifty fills.
        eventually(Duration.ofSeconds(30), () -> CacheContents.files(cache.resolve("tmp")).size() >= FIFTY.size(),
            "fifty fills under way");
        first.kill();
      }
      for (Pull pull : pulls) {
        pull.assertNeverCompleteAndWrong();
      }
      upstream.clearFaults();

      try (MirrorProcess second = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        assertRecovered(cache);
        List<Pull> again = new ArrayList<>();
        for (String digest : FIFTY) {
          again.add(new Pull(digest, SMALL, clients.submit(() -> fetch(second, "/v2/crash/many/blobs/" + digest))));
        }
        for (Pull pull : again) {
          Received got = pull.result().get();
          assertThat(got.complete(pull.size(), pull.digest())).as("pull of %s: %s", pull.digest(), got).isTrue();
        }
      }
    } finally {
      release.complete(null);
      clients.shutdownNow();
    }
  }

  @Test
  void killDuringConcurrentFillsThenOnceTheyAreInstalled(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    CompletableFuture<Void> release = new CompletableFuture<>();
    // Held halfway, these two are certainly being filled when the process dies.
    upstream.fault(matching("GET", ".*/blobs/" + medium), Fault.holdAfter(BLOBS.get(medium) / 2, release), 1);
    upstream.fault(matching("GET", ".*/blobs/" + large), Fault.holdAfter(BLOBS.get(large) / 2, release), 1);
    ExecutorService clients = Executors.newFixedThreadPool(12);
    try {
      List<Pull> pulls;
      try (MirrorProcess first = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        pulls = pullEverything(first, clients, 2);
        // The medium blob's file stops just short of 10 MiB and the large one's of 20 MiB (a fill
        // writes in batches, and keeps the last one in memory while upstream holds); no other
        // file grows that large, so the two largest partial files show both fills at their hold.
        eventually(Duration.ofSeconds(30), () -> {
          List<Path> parts = CacheContents.files(cache.resolve("tmp"));
          return parts.size() >= 2 && size(parts.get(0)) >= BLOBS.get(large) / 2 - BATCH
              && size(parts.get(1)) >= BLOBS.get(medium) / 2 - BATCH;
        }, "both held fills to reach their hold");
        first.kill();
      }
      for (Pull pull : pulls) {
        pull.assertNeverCompleteAndWrong();
        if (pull.digest().equals(medium) || pull.digest().equals(large)) {
          assertThat(pull.result().get().error()).as("a held transfer, cut by the kill: %s", pull.result().get())
              .isNotNull();
        }
      }
      assertThat(CacheContents.files(cache.resolve("tmp"))).as("partial files the kill left").isNotEmpty();
      upstream.clearFaults();

      try (MirrorProcess second = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        assertRecovered(cache);
        assertThat(second.log()).contains("event=cache.tmp.cleaned");
        assertFullPull(second, clients);
        eventually(Duration.ofSeconds(30), () -> BLOBS.keySet().stream().allMatch(d -> Files.exists(blobFile(cache, d)))
            && CacheContents.files(cache.resolve("tmp")).isEmpty(), "every fill to be installed");
        second.kill();
      }

      // A kill once everything is installed loses nothing: the next process serves it all from disk.
      upstream.clear();
      try (MirrorProcess third = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        assertRecovered(cache);
        assertFullPull(third, clients);
        assertThat(upstream.count("GET", ".*/blobs/.*")).as("blobs fetched again").isZero();
      }
    } finally {
      release.complete(null);
      clients.shutdownNow();
    }
  }

  @Test
  void killTheMomentEveryClientHasItsLastByte(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    ExecutorService clients = Executors.newFixedThreadPool(12);
    try {
      try (MirrorProcess first = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        for (Pull pull : pullEverything(first, clients, 1)) {
          assertThat(pull.result().get().complete(pull.size(), pull.digest()))
              .as("pull of %s: %s", pull.digest(), pull.result().get()).isTrue();
        }
        // Clients have their last byte once a blob is verified, which may be before its file is
        // flushed and renamed into place: this kill may fall in between.
        first.kill();
      }

      try (MirrorProcess second = MirrorProcess.start(upstream.url(), cache, work, List.of())) {
        assertRecovered(cache);
        assertFullPull(second, clients);
      }
    } finally {
      clients.shutdownNow();
    }
  }

  /** Right after start-up, before any request: nothing partial, nothing that does not match. */
  private static void assertRecovered(Path cache) {
    assertThat(CacheContents.files(cache.resolve("tmp"))).as("tmp/ at start-up").isEmpty();
    assertThat(CacheContents.mismatches(cache)).as("cached files that do not match their digest").isEmpty();
  }

  /** A full pull of every blob and the image through {@code mirror}: all of it complete and right. */
  private void assertFullPull(MirrorProcess mirror, ExecutorService clients) throws Exception {
    HttpResponse<byte[]> byDigest = get(mirror, "/v2/crash/app/manifests/" + image.manifestDigest());
    assertThat(byDigest.statusCode()).isEqualTo(200);
    assertThat(byDigest.body()).isEqualTo(image.manifest());
    for (Pull pull : pullEverything(mirror, clients, 1)) {
      Received got = pull.result().get();
      assertThat(got.complete(pull.size(), pull.digest())).as("pull of %s: %s", pull.digest(), got).isTrue();
    }
  }

  /** One GET in flight, and what it must deliver if it completes. */
  private record Pull(String digest, long size, Future<Received> result) {

    /** A client may lose its connection to a killed mirror, but a complete 200 has the right bytes. */
    void assertNeverCompleteAndWrong() throws Exception {
      Received got = result.get();
      if (got.error() == null && got.status() == 200) {
        assertThat(got.complete(size, digest)).as("a complete 200 for %s: %s", digest, got).isTrue();
      }
    }
  }

  /**
   * Starts {@code perBlob} concurrent GETs of each large blob, and one of each of the image's
   * blobs and of its manifest by tag.
   */
  private List<Pull> pullEverything(MirrorProcess mirror, ExecutorService clients, int perBlob) {
    List<Pull> pulls = new ArrayList<>();
    BLOBS.forEach((digest, size) -> {
      for (int i = 0; i < perBlob; i++) {
        pulls.add(new Pull(digest, size, clients.submit(() -> fetch(mirror, "/v2/crash/big/blobs/" + digest))));
      }
    });
    image.blobs().forEach((digest, bytes) -> pulls.add(new Pull(digest, bytes.length,
        clients.submit(() -> fetch(mirror, "/v2/crash/app/blobs/" + digest)))));
    pulls.add(new Pull(image.manifestDigest(), image.manifest().length,
        clients.submit(() -> fetch(mirror, "/v2/crash/app/manifests/1.0"))));
    return pulls;
  }

  private Received fetch(MirrorProcess mirror, String path) {
    try {
      return MirrorUnderTest.drain(http.send(request(mirror, path), HttpResponse.BodyHandlers.ofInputStream()));
    } catch (IOException e) {
      return new Received(0, 0, null, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private HttpResponse<byte[]> get(MirrorProcess mirror, String path) throws IOException, InterruptedException {
    return http.send(request(mirror, path), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static HttpRequest request(MirrorProcess mirror, String path) {
    return HttpRequest.newBuilder(URI.create(mirror.url() + path))
        .timeout(Duration.ofSeconds(60))
        .header("Accept", DOCKER)
        .build();
  }

  private static Path blobFile(Path cache, String digest) {
    String hex = digest.substring("sha256:".length());
    return cache.resolve("blobs").resolve("sha256").resolve(hex.substring(0, 2)).resolve(hex);
  }

  private static long size(Path file) {
    try {
      return Files.size(file);
    } catch (IOException e) {
      return 0;
    }
  }
}
