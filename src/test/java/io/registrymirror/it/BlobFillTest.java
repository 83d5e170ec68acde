package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The blob tee: streaming a miss while it fills the cache, sharing one upstream fetch, refusing
 * to let a broken upstream body look complete, and serving ranges during and after a fill.
 */
class BlobFillTest extends MirrorTestBase {

  private static final long LARGE = 64L << 20;
  private static final String BLOBS = ".*/blobs/.*";

  @TempDir
  static Path files;
  private static String large;
  private static Path largeFile;


  @BeforeAll
  static void seed() throws Exception {
    largeFile = ImageSeeder.randomFile(files, LARGE, 42);
    large = new ImageSeeder(registry.url()).pushBlob("big/blob", largeFile);
  }

  @Test
  void sixteenConcurrentColdRequestsShareOneUpstreamFetch() throws Exception {
    ExecutorService clients = Executors.newFixedThreadPool(16);
    try {
      List<Future<Received>> results = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        results.add(clients.submit(() -> mirror.fetch("/v2/big/blob/blobs/" + large)));
      }
      for (Future<Received> r : results) {
        Received got = r.get();
        assertThat(got.status()).isEqualTo(200);
        assertThat(got.complete(LARGE, large)).as("all bytes, with the right digest").isTrue();
      }
    } finally {
      clients.shutdownNow();
    }
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
    assertThat(Files.size(mirror.blobFile(large))).isEqualTo(LARGE);
  }

  @Test
  void aFillIsSharedAcrossRepositories() throws Exception {
    CompletableFuture<Void> release = new CompletableFuture<>();
    upstream.fault(matching("GET", BLOBS), Fault.holdAfter(1 << 20, release), 1);
    HttpResponse<InputStream> first = mirror.open("/v2/big/blob/blobs/" + large);

    ExecutorService client = Executors.newSingleThreadExecutor();
    try {
      // The content is addressed by digest alone: another repository joins the same fetch.
      Future<Received> other = client.submit(() -> mirror.fetch("/v2/another/name/blobs/" + large));
      release.complete(null);
      assertThat(other.get().complete(LARGE, large)).isTrue();
    } finally {
      client.shutdownNow();
    }
    assertThat(MirrorUnderTest.drain(first).complete(LARGE, large)).isTrue();
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
  }

  @Test
  void aFetchThatFailsForAnotherRepositoryIsRetriedForOurs() throws Exception {
    // Upstream scopes blobs by repository: through another/name this one is unknown.
    upstream.fault(matching("GET", "/v2/another/name/blobs/.*"), Fault.delayHeaders(Duration.ofMillis(500)), 1);
    ExecutorService clients = Executors.newFixedThreadPool(2);
    try {
      Future<Received> stranger = clients.submit(() -> mirror.fetch("/v2/another/name/blobs/" + large));
      eventually(Duration.ofSeconds(5), () -> upstream.arrived("GET", "/v2/another/name/blobs/.*") == 1,
          "the first fetch to be under way");
      Future<Received> owner = clients.submit(() -> mirror.fetch("/v2/big/blob/blobs/" + large));
      assertThat(stranger.get().status()).isEqualTo(404);
      assertThat(owner.get().complete(LARGE, large)).isTrue();
    } finally {
      clients.shutdownNow();
    }
    assertThat(upstream.count("GET", "/v2/big/blob/blobs/.*")).isEqualTo(1);
  }

  @ParameterizedTest(name = "cut at {0}%")
  @ValueSource(ints = {1, 50, 99})
  void aTransferThatBreaksOffIsResumedWithARange(int percent) {
    long cut = LARGE * percent / 100;
    upstream.fault(matching("GET", BLOBS), Fault.cutAfter(cut), 1);

    Received got = mirror.fetch("/v2/big/blob/blobs/" + large);
    assertThat(got.complete(LARGE, large)).as("the client sees no error").isTrue();
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(2);
    var resume = upstream.seen().stream().filter(s -> s.uri().contains("/blobs/")).toList().get(1);
    // From what the mirror really received: bytes still in flight when the connection closed
    // are lost, so it may be a little before the cut.
    String range = resume.headers().get("Range");
    assertThat(range).matches("bytes=\\d+-");
    long from = Long.parseLong(range.substring("bytes=".length(), range.length() - 1));
    assertThat(from).isBetween(Math.max(0, cut - (4L << 20)), cut);
    // The reference registry sends an ETag: the rest is asked for only if it still matches.
    assertThat(resume.headers().get("If-Range")).isEqualTo("\"" + large + "\"");
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(large)), "the blob to be cached");
  }

  @Test
  void aTransferThatKeepsBreakingOffIsNeverCompleteAndNeverCached() {
    upstream.fault(matching("GET", BLOBS), Fault.cutAfter(1 << 20));

    Received got = mirror.fetch("/v2/big/blob/blobs/" + large);
    assertThat(got.complete(LARGE, large)).isFalse();
    assertThat(got.error()).as("the client sees a broken transfer").isNotNull();
    assertThat(got.bytes()).isLessThan(LARGE);
    assertNothingCached();
    // A bounded number of tries: the first request and three resumes.
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(4);

    // Nothing bad was remembered: once upstream behaves, the blob is fetched and served.
    upstream.clearFaults();
    assertThat(mirror.fetch("/v2/big/blob/blobs/" + large).complete(LARGE, large)).isTrue();
  }

  @Test
  void corruptUpstreamBodyIsNeverCompleteAndNeverCached() {
    upstream.fault(matching("GET", BLOBS), Fault.flipByte(LARGE - 10), 1);

    Received got = mirror.fetch("/v2/big/blob/blobs/" + large);
    // Same length as the real blob, one byte flipped: only the digest tells, and the mirror
    // holds back the last byte until it has checked it.
    assertThat(got.error()).isNotNull();
    assertThat(got.bytes()).isLessThan(LARGE);
    assertNothingCached();

    assertThat(mirror.fetch("/v2/big/blob/blobs/" + large).complete(LARGE, large)).isTrue();
  }

  @Test
  void rangesOnACachedBlob() throws Exception {
    assertThat(mirror.fetch("/v2/big/blob/blobs/" + large).complete(LARGE, large)).isTrue();
    byte[] expected = slice(1000, 1999);

    HttpResponse<byte[]> part = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=1000-1999");
    assertThat(part.statusCode()).isEqualTo(206);
    assertThat(part.headers().firstValue("Content-Range")).hasValue("bytes 1000-1999/" + LARGE);
    assertThat(part.body()).isEqualTo(expected);

    HttpResponse<byte[]> tail = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=-100");
    assertThat(tail.statusCode()).isEqualTo(206);
    assertThat(tail.body()).isEqualTo(slice(LARGE - 100, LARGE - 1));

    HttpResponse<byte[]> resume = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=" + (LARGE - 5) + "-");
    assertThat(resume.statusCode()).isEqualTo(206);
    assertThat(resume.body()).isEqualTo(slice(LARGE - 5, LARGE - 1));

    HttpResponse<byte[]> beyond = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=" + LARGE + "-");
    assertThat(beyond.statusCode()).isEqualTo(416);
    assertThat(beyond.headers().firstValue("Content-Range")).hasValue("bytes */" + LARGE);
    assertThat(new String(beyond.body())).contains("\"RANGE_INVALID\"");
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
  }

  @Test
  void rangesWhileTheBlobIsStillArriving() throws Exception {
    CompletableFuture<Void> release = new CompletableFuture<>();
    long held = 8L << 20;
    upstream.fault(matching("GET", BLOBS), Fault.holdAfter(held, release), 1);

    HttpResponse<InputStream> first = mirror.open("/v2/big/blob/blobs/" + large);
    assertThat(first.statusCode()).isEqualTo(200);
    assertThat(first.headers().firstValueAsLong("Content-Length")).hasValue(LARGE);

    // Upstream has sent only its first 8 MiB. A range inside them gets its headers and all but
    // its last byte at once; the last byte waits until the whole blob is verified.
    HttpResponse<InputStream> early = mirror.open("/v2/big/blob/blobs/" + large, "Range", "bytes=4096-8191");
    assertThat(early.statusCode()).isEqualTo(206);
    assertThat(early.headers().firstValue("Content-Range")).hasValue("bytes 4096-8191/" + LARGE);
    assertThat(early.body().readNBytes(4095)).isEqualTo(slice(4096, 8190));
    // A range beyond them waits for its bytes.
    ExecutorService client = Executors.newSingleThreadExecutor();
    try {
      Future<HttpResponse<byte[]>> late = client.submit(() ->
          mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=" + (LARGE - 1000) + "-"));
      assertThat(release).isNotDone();
      release.complete(null);
      assertThat(late.get().statusCode()).isEqualTo(206);
      assertThat(late.get().body()).isEqualTo(slice(LARGE - 1000, LARGE - 1));
    } finally {
      client.shutdownNow();
    }
    assertThat(early.body().readAllBytes()).isEqualTo(slice(8191, 8191));
    assertThat(MirrorUnderTest.drain(first).complete(LARGE, large)).isTrue();
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
  }

  @Test
  void aRangeOfACorruptBlobNeverCompletes() {
    // The flipped byte lies far beyond the range: only the whole blob's digest can tell.
    upstream.fault(matching("GET", BLOBS), Fault.flipByte(LARGE - 10), 1);
    Received part = mirror.fetch("/v2/big/blob/blobs/" + large, "Range", "bytes=0-99");
    assertThat(part.error()).isNotNull();
    assertThat(part.bytes()).isLessThan(100);
    assertNothingCached();
  }

  @Test
  void anEmptyBodyForANonEmptyBlobNeverCompletes() {
    upstream.fault(matching("GET", BLOBS), Fault.status(200, "", Map.of("Content-Type", "application/octet-stream")), 1);
    HttpResponse<byte[]> got = mirror.get("/v2/big/blob/blobs/" + large);
    assertThat(got.statusCode()).isEqualTo(503);
    assertNothingCached();
  }

  @Test
  void aConnectionLostRightAfterTheHeadersLeavesNoFillBehind() {
    upstream.fault(matching("GET", BLOBS), Fault.cutAfter(0));
    Received got = mirror.fetch("/v2/big/blob/blobs/" + large);
    assertThat(got.complete(LARGE, large)).isFalse();
    assertNothingCached();
    // The failed fetch is forgotten: the next request fetches again and succeeds.
    upstream.clearFaults();
    assertThat(mirror.fetch("/v2/big/blob/blobs/" + large).complete(LARGE, large)).isTrue();
  }

  @Test
  void aMalformedRangeIsRefusedBeforeAnythingIsFetched() {
    HttpResponse<byte[]> r = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=9-5");
    assertThat(r.statusCode()).isEqualTo(416);
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void anUnsatisfiableRangeOnABlobBeingFetchedIsRefused() {
    HttpResponse<byte[]> r = mirror.get("/v2/big/blob/blobs/" + large, "Range", "bytes=" + (LARGE + 5) + "-");
    assertThat(r.statusCode()).isEqualTo(416);
    assertThat(r.headers().firstValue("Content-Range")).hasValue("bytes */" + LARGE);
  }

  @Test
  void aClientThatHangsUpDoesNotStopTheFill() throws Exception {
    HttpResponse<InputStream> quitter = mirror.open("/v2/big/blob/blobs/" + large);
    assertThat(quitter.body().readNBytes(1024)).hasSize(1024);
    quitter.body().close();

    eventually(Duration.ofSeconds(30), () -> Files.exists(mirror.blobFile(large)), "the fill to complete");
    assertThat(mirror.fetch("/v2/big/blob/blobs/" + large).complete(LARGE, large)).isTrue();
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
  }

  @Test
  void aStalledClientSlowsNeitherTheFillNorOthers() throws Exception {
    HttpResponse<InputStream> stalled = mirror.open("/v2/big/blob/blobs/" + large);
    assertThat(stalled.body().readNBytes(16)).hasSize(16);

    Received other = mirror.fetch("/v2/big/blob/blobs/" + large);
    assertThat(other.complete(LARGE, large)).isTrue();
    eventually(Duration.ofSeconds(30), () -> Files.exists(mirror.blobFile(large)), "the fill to complete");

    // The stalled client still gets every byte once it reads on.
    Received rest = MirrorUnderTest.drain(stalled);
    assertThat(rest.error()).isNull();
    assertThat(rest.bytes()).isEqualTo(LARGE - 16);
    assertThat(upstream.count("GET", BLOBS)).isEqualTo(1);
  }

  private void assertNothingCached() {
    eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "the partial file to be deleted");
    assertThat(mirror.filesUnder("blobs")).isZero();
    assertThat(Files.exists(mirror.blobFile(large))).isFalse();
  }

  private static byte[] slice(long from, long toInclusive) throws Exception {
    try (var ch = Files.newByteChannel(largeFile)) {
      ch.position(from);
      var buf = java.nio.ByteBuffer.allocate((int) (toInclusive - from + 1));
      while (buf.hasRemaining() && ch.read(buf) >= 0) {
        // read until full
      }
      return Arrays.copyOf(buf.array(), buf.position());
    }
  }
}
