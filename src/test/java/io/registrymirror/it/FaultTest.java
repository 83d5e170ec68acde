package io.registrymirror.it;

import static io.registrymirror.it.ErrorResponseTest.assertError;
import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import io.registrymirror.testing.TestLimits;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiPredicate;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An upstream that misbehaves (cut connections, corrupt or mis-sized bodies, error statuses,
 * refused connections, drips and stalls), one fault per test, each held to the same
 * invariants: no client receives a complete response whose bytes do not match the digest;
 * nothing that does not match enters the cache; the mirror keeps answering other requests; a
 * client that resumes with {@code Range} ends up with the right blob; and nothing outlasts the
 * configured timeouts. (A failing token service is in {@link UpstreamAuthTest}, an unreachable
 * upstream with nothing cached in {@link ErrorResponseTest}.)
 */
@Timeout(60)
class FaultTest extends MirrorTestBase {

  private static final long SIZE = 16L << 20;
  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  // The mirror's limits: the timeouts every mirror under test has (TestLimits), this class's
  // rate window (set in upstreamYaml below), and the resumes the mirror allows one transfer.
  private static final Duration CONNECT_TIMEOUT = TestLimits.CONNECT_TIMEOUT;
  private static final Duration IDLE_TIMEOUT = TestLimits.IDLE_TIMEOUT;
  private static final Duration RATE_WINDOW = Duration.ofSeconds(2);
  /** How many times the mirror resumes one transfer (not configurable: the mirror's own constant). */
  private static final int RESUMES = 3;

  /** Far below every timeout: a failure that needs no waiting must not be found by waiting. */
  private static final Duration QUICK = Duration.ofSeconds(3);
  /** An upstream that stalls or never answers: a connect and an idle timeout, and some slack. */
  private static final Duration TIMEOUTS = CONNECT_TIMEOUT.plus(IDLE_TIMEOUT).plusSeconds(2);
  /**
   * A drip through every try: one rate window per try, and one more for where the first check
   * falls, plus slack.
   */
  private static final Duration DRIP_BOUND = RATE_WINDOW.multipliedBy(RESUMES + 2).plusSeconds(2);

  @TempDir
  static Path files;
  private static String blob;
  private static Image image;
  private static Image other;

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    blob = seeder.pushBlob("fault/blob", ImageSeeder.randomFile(files, SIZE, 7));
    image = seeder.pushImage("fault/app", "1.0", 1, 50_000, "docker");
    other = seeder.pushImage("fault/other", "1.0", 1, 50_000, "docker");
  }

  /** A rate window of seconds rather than the default half minute, so that a drip is found quickly. */
  @Override
  protected String upstreamYaml() {
    return """
        minRate: 16KiB
        rateWindow: %ds
        """.formatted(RATE_WINDOW.toSeconds());
  }

  // ---- a connection cut, and what follows it ----

  @ParameterizedTest(name = "cut at {0}%")
  @ValueSource(ints = {1, 50, 99})
  void aCutWhoseResumeFailsBreaksTheTransferAndTheClientResumesIt(int percent) throws Exception {
    long cut = SIZE * percent / 100;
    upstream.fault(blobGet(), Fault.cutAfter(cut), 1);
    // By the time the mirror asks for the rest, upstream is failing.
    upstream.fault(blobGet(), Fault.status(503, "", Map.of()), 1);
    int manifestCut = image.manifest().length * percent / 100;
    upstream.fault(manifestGet(), Fault.cutAfter(manifestCut), 1);

    long started = System.nanoTime();
    Pull pull = pullResuming(4);
    Transfer first = pull.transfers().get(0);
    assertThat(first.status()).isEqualTo(200);
    assertThat(first.broken()).as("the client sees a broken transfer").isTrue();
    assertThat(first.bytes()).as("bytes received").isLessThanOrEqualTo(cut);
    assertThat(pull.correct()).as("the blob the client assembled: %s", pull).isTrue();
    assertThat(pull.transfers()).hasSize(2);
    assertThat(elapsed(started)).isLessThan(QUICK);

    List<Seen> gets = blobGets();
    assertThat(gets).extracting(Seen::status).containsExactly(200, 503, 200);
    assertResumedFromAtMost(gets.get(1), cut);

    // A manifest is small and read whole: a cut one is an error, never a short manifest.
    assertError(mirror.get(manifestPath(), "Accept", DOCKER), 503, "UNAVAILABLE", false);
    assertThat(Files.exists(manifestFile())).isFalse();

    assertCacheHoldsOnlyVerifiedContent();
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(blob)), "the resumed blob to be cached");
    assertMirrorAnswers();
    assertThat(mirror.get(manifestPath(), "Accept", DOCKER).body()).isEqualTo(image.manifest());
  }

  @Test
  void aTransferIsNotResumedOnceUpstreamsValidatorNoLongerMatches() throws Exception {
    long cut = SIZE / 2;
    // The first response names a version that upstream no longer serves when the mirror comes
    // back for the rest: a rest from another version must not be appended.
    upstream.fault(blobGet(), Fault.withHeaders(Map.of("ETag", "\"an-older-version\""), Fault.cutAfter(cut)), 1);
    assertClientRecoversFromABreakAt(cut);

    List<Seen> gets = blobGets();
    assertThat(gets).hasSize(3);
    assertResumedFromAtMost(gets.get(1), cut);
    assertThat(gets.get(1).headers().get("If-Range")).isEqualTo("\"an-older-version\"");
    // Upstream answered with the whole current blob instead of the rest, and the mirror let it go.
    assertThat(gets.get(1).status()).isEqualTo(200);
    assertCacheHoldsOnlyVerifiedContent();
    assertMirrorAnswers();
  }

  @Test
  void aTransferWithoutValidatorsIsNotResumed() throws Exception {
    long cut = SIZE / 2;
    // Without an ETag or Last-Modified, nothing tells the mirror that a rest would belong to
    // the same version, so it does not ask for one.
    upstream.fault(blobGet(), Fault.withoutHeaders(List.of("ETag", "Last-Modified"), Fault.cutAfter(cut)), 1);
    assertClientRecoversFromABreakAt(cut);

    // The cut transfer, then the fetch the client's own resume started: no Range from the mirror.
    List<Seen> gets = blobGets();
    assertThat(gets).extracting(Seen::status).containsExactly(200, 200);
    assertThat(gets).allSatisfy(g -> assertThat(g.headers().contains("Range")).isFalse());
    assertCacheHoldsOnlyVerifiedContent();
    assertMirrorAnswers();
  }

  /** The client sees its transfer break at {@code cut} at most, resumes, and gets the blob. */
  private void assertClientRecoversFromABreakAt(long cut) throws Exception {
    long started = System.nanoTime();
    Pull pull = pullResuming(4);
    assertThat(pull.transfers().get(0).broken()).as("the client sees a broken transfer").isTrue();
    assertThat(pull.transfers().get(0).bytes()).isLessThanOrEqualTo(cut);
    assertThat(pull.correct()).as("the blob the client assembled: %s", pull).isTrue();
    assertThat(elapsed(started)).isLessThan(QUICK);
  }

  @Test
  void aCorruptRestAfterAResumeIsNeverCompleteNorCached() throws Exception {
    long cut = SIZE / 2;
    upstream.fault(blobGet(), Fault.cutAfter(cut), 1);
    upstream.fault(blobGet(), Fault.flipByte(1000), 1);

    Pull pull = pullResuming(4);
    Transfer first = pull.transfers().get(0);
    assertThat(first.broken()).as("the client sees a broken transfer").isTrue();
    assertThat(first.bytes()).isLessThan(SIZE);
    assertResumedFromAtMost(blobGets().get(1), cut);
    // All but the last byte went out before the digest could be checked, the flipped one among
    // them: a client that resumes assembles a blob that fails its digest check, and starts over.
    assertThat(pull.restarts()).isLessThanOrEqualTo(1);
    assertThat(pull.correct()).as("the blob the client assembled: %s", pull).isTrue();
    assertCacheHoldsOnlyVerifiedContent();
    assertMirrorAnswers();
  }

  // ---- bodies that disagree with their Content-Length ----

  @Test
  void bytesAfterACompleteBodyAreNotTakenForAnotherResponse() throws Exception {
    upstream.fault(blobGet(), Fault.longBody(4096), 1);
    upstream.fault(manifestGet(), Fault.longBody(4096), 1);

    long started = System.nanoTime();
    // The announced length held the whole blob and the whole manifest: what follows belongs to no response.
    assertThat(mirror.fetch(blobPath()).complete(SIZE, blob)).isTrue();
    assertThat(mirror.get(manifestPath(), "Accept", DOCKER).body()).isEqualTo(image.manifest());
    assertThat(elapsed(started)).isLessThan(QUICK);

    // At once, requests that all go upstream: none may be answered with the junk.
    List<CompletableFuture<HttpResponse<byte[]>>> lists = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      lists.add(CompletableFuture.supplyAsync(() -> mirror.get("/v2/fault/app/tags/list")));
    }
    for (CompletableFuture<HttpResponse<byte[]>> list : lists) {
      assertThat(list.join().statusCode()).isEqualTo(200);
      assertThat(new String(list.join().body())).contains("\"1.0\"");
    }
    assertCacheHoldsOnlyVerifiedContent();
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(blob)), "the blob to be cached");
    assertMirrorAnswers();
  }

  @ParameterizedTest(name = "Content-Length off by {0}")
  @ValueSource(longs = {-100, 100})
  void aBodyThatDisagreesWithItsContentLengthIsNeverCompleteNorCached(long delta) throws Exception {
    upstream.fault(blobGet(), Fault.wrongLength(delta), 1);
    upstream.fault(manifestGet(), Fault.wrongLength(delta), 1);

    long started = System.nanoTime();
    Pull pull = pullResuming(4);
    Transfer first = pull.transfers().get(0);
    assertThat(first.broken()).as("the client sees a broken transfer").isTrue();
    assertThat(first.bytes()).isLessThan(SIZE);
    assertThat(pull.correct()).as("the blob the client assembled: %s", pull).isTrue();
    assertError(mirror.get(manifestPath(), "Accept", DOCKER), 503, "UNAVAILABLE", false);
    assertThat(elapsed(started)).isLessThan(QUICK);

    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(manifestFile())).isFalse();
    assertMirrorAnswers();
    assertThat(mirror.get(manifestPath(), "Accept", DOCKER).body()).isEqualTo(image.manifest());
  }

  // ---- error statuses ----

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {500, 502, 503})
  void serverErrorsAreUnavailableAtOnceAndNotRemembered(int status) {
    upstream.fault(blobGet(), Fault.status(status, "", Map.of()));
    upstream.fault(manifestGet(), Fault.status(status, "", Map.of()));

    long started = System.nanoTime();
    assertError(mirror.get(blobPath()), 503, "UNAVAILABLE", false);
    assertError(mirror.get(manifestPath(), "Accept", DOCKER), 503, "UNAVAILABLE", false);
    assertThat(elapsed(started)).isLessThan(QUICK);
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(mirror.blobFile(blob))).isFalse();
    assertThat(Files.exists(manifestFile())).isFalse();
    assertMirrorAnswers();

    upstream.clearFaults();
    assertThat(mirror.fetch(blobPath()).complete(SIZE, blob)).isTrue();
    assertThat(mirror.get(manifestPath(), "Accept", DOCKER).body()).isEqualTo(image.manifest());
  }

  @Test
  void rateLimitingOfBlobsAndManifestsIsPassedOnWithItsRetryAfter() {
    upstream.fault(blobGet(), Fault.status(429, "", Map.of("Retry-After", "17")));
    upstream.fault(manifestGet(), Fault.status(429, "", Map.of("Retry-After", "17")));

    long started = System.nanoTime();
    HttpResponse<byte[]> blobAnswer = mirror.get(blobPath());
    HttpResponse<byte[]> manifestAnswer = mirror.get(manifestPath(), "Accept", DOCKER);
    assertThat(elapsed(started)).isLessThan(QUICK);
    for (HttpResponse<byte[]> answer : List.of(blobAnswer, manifestAnswer)) {
      assertError(answer, 429, "TOOMANYREQUESTS", false);
      assertThat(answer.headers().firstValue("Retry-After")).hasValue("17");
    }
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(mirror.blobFile(blob))).isFalse();
    assertMirrorAnswers();
  }

  // ---- an upstream that goes away ----

  @Test
  void anUpstreamThatGoesAwayMidTransferFailsItAtOnceAndTheCacheStillServes() throws Exception {
    assertMirrorAnswers();
    // Every response, resumes included, holds after 1 MiB, so the transfer is surely under way.
    upstream.fault(blobGet(), Fault.holdAfter(1 << 20, new CompletableFuture<>()));
    HttpResponse<InputStream> transfer = mirror.open(blobPath());
    assertThat(transfer.statusCode()).isEqualTo(200);
    assertThat(transfer.body().readNBytes(512 * 1024)).hasSize(512 * 1024);

    long started = System.nanoTime();
    // The connection drops, and the resume finds the port closed: connection refused.
    upstream.close();
    Received rest = MirrorUnderTest.drain(transfer);
    assertThat(rest.error()).as("the client sees a broken transfer").isNotNull();
    assertThat(elapsed(started)).isLessThan(QUICK);
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(mirror.blobFile(blob))).isFalse();

    assertMirrorAnswers();
    started = System.nanoTime();
    assertError(mirror.get(manifestPath(), "Accept", DOCKER), 503, "UNAVAILABLE", false);
    assertError(mirror.get(blobPath()), 503, "UNAVAILABLE", false);
    assertThat(elapsed(started)).isLessThan(QUICK);
  }

  // ---- an upstream that is slow ----

  @Test
  void responseHeadersThatNeverComeEndWithinTheIdleTimeout() throws Exception {
    upstream.fault(blobGet(), Fault.headersNever());
    upstream.fault(manifestGet(), Fault.headersNever());
    ExecutorService clients = Executors.newFixedThreadPool(2);
    try {
      long started = System.nanoTime();
      Future<HttpResponse<byte[]>> blobAnswer = clients.submit(() -> mirror.get(blobPath()));
      Future<HttpResponse<byte[]>> manifestAnswer =
          clients.submit(() -> mirror.get(manifestPath(), "Accept", DOCKER));
      eventually(Duration.ofSeconds(5), () -> upstream.arrived("GET", ".*/blobs/" + blob) == 1
          && upstream.arrived("GET", ".*/manifests/" + image.manifestDigest()) == 1, "both requests to reach upstream");
      // While both wait on upstream, everything else is answered at once.
      assertMirrorAnswers();

      assertError(blobAnswer.get(), 503, "UNAVAILABLE", false);
      assertError(manifestAnswer.get(), 503, "UNAVAILABLE", false);
      assertThat(elapsed(started)).isLessThan(TIMEOUTS);
    } finally {
      clients.shutdownNow();
    }
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(mirror.blobFile(blob))).isFalse();
  }

  @Test
  void aBlobBodyThatStallsIsCutAndResumedWithinTheTimeouts() {
    upstream.fault(blobGet(), Fault.holdAfter(SIZE / 2, new CompletableFuture<>()), 1);
    long started = System.nanoTime();
    Received got = mirror.fetch(blobPath());
    assertThat(got.complete(SIZE, blob)).as("the client sees no error: %s", got).isTrue();
    assertThat(elapsed(started)).isLessThan(TIMEOUTS);

    List<Seen> gets = blobGets();
    assertThat(gets).hasSize(2);
    assertResumedFromAtMost(gets.get(1), SIZE / 2);
    assertCacheHoldsOnlyVerifiedContent();
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(blob)), "the blob to be cached");
    assertMirrorAnswers();
  }

  @Test
  void aManifestBodyThatStallsFailsWithinTheIdleTimeout() {
    // The headers and the first bytes come, then nothing, on a connection that stays open.
    upstream.fault(manifestGet(), Fault.holdAfter(100, new CompletableFuture<>()));
    long started = System.nanoTime();
    CompletableFuture<HttpResponse<byte[]>> answer =
        CompletableFuture.supplyAsync(() -> mirror.get(manifestPath(), "Accept", DOCKER));
    eventually(Duration.ofSeconds(5), () -> upstream.count("GET", ".*/manifests/" + image.manifestDigest()) == 1,
        "the manifest's headers to leave upstream");
    assertMirrorAnswers();

    // A manifest is not resumed: it fails, but no later than the idle timeout.
    assertThat(answer).as(() -> "the manifest GET, still unanswered after " + elapsed(started).toMillis() + " ms")
        .succeedsWithin(TIMEOUTS)
        .satisfies(r -> assertError(r, 503, "UNAVAILABLE", false));
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(manifestFile())).isFalse();
  }

  @Test
  void aDripIsCutAndResumedSoTheClientGetsTheBlobWithinTheTimeouts() throws Exception {
    // About 1 KiB/s: never idle long enough for the idle timeout, far too slow to be of use.
    upstream.fault(blobGet(), Fault.drip(1024), 1);
    AtomicLong received = new AtomicLong();
    ExecutorService client = Executors.newSingleThreadExecutor();
    try {
      long started = System.nanoTime();
      Future<Received> answer = client.submit(() -> fetchCounting(blobPath(), received));
      eventually(Duration.ofSeconds(5), () -> received.get() > 0, "the drip to start");
      assertMirrorAnswers();

      assertThat(answer).as(() -> "the client had " + received.get() + " bytes of " + SIZE + " after "
          + elapsed(started).toMillis() + " ms").succeedsWithin(TIMEOUTS)
          .satisfies(got -> assertThat(got.complete(SIZE, blob)).as("the client sees no error: %s", got).isTrue());
    } finally {
      client.shutdownNow();
    }
    List<Seen> gets = blobGets();
    assertThat(gets).hasSize(2);
    assertResumedFromAtMost(gets.get(1), SIZE);
    assertCacheHoldsOnlyVerifiedContent();
    assertMirrorAnswers();
  }

  @Test
  void aDripThatNeverEndsFailsTheTransferAfterABoundedNumberOfTries() throws Exception {
    upstream.fault(blobGet(), Fault.drip(1024));
    long started = System.nanoTime();
    Received got = mirror.fetch(blobPath());
    Duration took = elapsed(started);
    assertThat(got.error()).as("the client sees a broken transfer: %s", got).isNotNull();
    assertThat(took).isLessThan(DRIP_BOUND);
    assertThat(blobGets()).hasSize(1 + RESUMES);
    assertCacheHoldsOnlyVerifiedContent();
    assertThat(Files.exists(mirror.blobFile(blob))).isFalse();
    assertMirrorAnswers();
  }

  @Test
  void aDripWithoutContentLengthIsCutWithinTheTimeoutsToo() throws Exception {
    // Without a length the transfer cannot be resumed, but it must still end.
    upstream.fault(blobGet(), Fault.withoutLength(Fault.drip(1024)), 1);
    AtomicLong received = new AtomicLong();
    ExecutorService client = Executors.newSingleThreadExecutor();
    try {
      long started = System.nanoTime();
      Future<Received> answer = client.submit(() -> fetchCounting(blobPath(), received));
      assertThat(answer).as(() -> "the client had " + received.get() + " bytes of " + SIZE + " after "
          + elapsed(started).toMillis() + " ms").succeedsWithin(TIMEOUTS)
          .satisfies(got -> assertThat(got.complete(SIZE, blob) || got.error() != null)
              .as("complete and right, or broken: %s", got).isTrue());
    } finally {
      client.shutdownNow();
    }
    assertCacheHoldsOnlyVerifiedContent();
    assertMirrorAnswers();
  }

  // ---- the client's side ----

  /** One response as a client read it: where it started, how many bytes, whether it broke off. */
  private record Transfer(int status, long start, long bytes, boolean broken) {
  }

  /** What a resuming client ended up with, and the transfers it took. */
  private record Pull(List<Transfer> transfers, long bytes, String digest, int restarts) {
    boolean correct() {
      return bytes == SIZE && blob.equals(digest);
    }
  }

  /**
   * Pulls the blob as containerd does: after a broken transfer it asks for the rest with
   * {@code Range: bytes=<received>-}; with every byte in hand it checks the digest, and starts
   * over if it is wrong. Whatever happens, a complete 200 must carry exactly the blob.
   */
  private Pull pullResuming(int maxTransfers) throws IOException, InterruptedException {
    MessageDigest sha = sha256();
    long have = 0;
    int restarts = 0;
    List<Transfer> transfers = new ArrayList<>();
    while (transfers.size() < maxTransfers) {
      long start = have;
      HttpResponse<InputStream> r = start == 0 ? mirror.open(blobPath())
          : mirror.open(blobPath(), "Range", "bytes=" + start + "-");
      int status = r.statusCode();
      if (status == 206) {
        assertThat(r.headers().firstValue("Content-Range")).as("Content-Range")
            .hasValueSatisfying(v -> assertThat(v).startsWith("bytes " + start + "-").endsWith("/" + SIZE));
      } else if (status == 200 && start > 0) {
        // The whole blob again, from its first byte.
        sha.reset();
        have = 0;
      } else if (status != 200) {
        r.body().close();
        transfers.add(new Transfer(status, start, 0, false));
        continue;
      }
      long from = have;
      boolean broken = false;
      byte[] buf = new byte[64 * 1024];
      try (InputStream in = r.body()) {
        for (int n; (n = in.read(buf)) >= 0; ) {
          sha.update(buf, 0, n);
          have += n;
        }
      } catch (IOException e) {
        broken = true;
      }
      transfers.add(new Transfer(status, from, have - from, broken));
      if (broken) {
        continue;
      }
      String digest = hex(sha);
      if (status == 200) {
        assertThat(have).as("bytes of a complete 200").isEqualTo(SIZE);
        assertThat(digest).as("digest of a complete 200").isEqualTo(blob);
      }
      if (have == SIZE && digest.equals(blob)) {
        return new Pull(transfers, have, digest, restarts);
      }
      restarts++;
      sha.reset();
      have = 0;
    }
    return new Pull(transfers, have, null, restarts);
  }

  /** Reads the whole response like {@link MirrorUnderTest#fetch}, counting the bytes as they come. */
  private Received fetchCounting(String path, AtomicLong received) throws IOException, InterruptedException {
    HttpResponse<InputStream> r = mirror.open(path);
    MessageDigest sha = sha256();
    byte[] buf = new byte[64 * 1024];
    try (InputStream in = r.body()) {
      for (int n; (n = in.read(buf)) >= 0; ) {
        sha.update(buf, 0, n);
        received.addAndGet(n);
      }
    } catch (IOException e) {
      return new Received(r.statusCode(), received.get(), null, e);
    }
    Received got = new Received(r.statusCode(), received.get(), hex(sha), null);
    if (got.status() == 200) {
      assertThat(got.complete(SIZE, blob)).as("a complete 200 carries the blob: %s", got).isTrue();
    }
    return got;
  }

  // ---- the invariants ----

  /** Nothing partial is left behind, and every file in the cache hashes to its name. */
  private void assertCacheHoldsOnlyVerifiedContent() {
    eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "partial files to be deleted");
    assertThat(CacheContents.mismatches(mirror.cacheDir())).as("cached files that do not match their digest")
        .isEmpty();
  }

  /** The mirror answers a normal pull of another image, at once. */
  private void assertMirrorAnswers() {
    long started = System.nanoTime();
    assertThat(mirror.get("/v2/").statusCode()).isEqualTo(200);
    HttpResponse<byte[]> manifest = mirror.get("/v2/fault/other/manifests/1.0", "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(other.manifest());
    for (var b : other.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get("/v2/fault/other/blobs/" + b.getKey());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(b.getValue());
    }
    assertThat(elapsed(started)).as("time to answer another pull").isLessThan(QUICK);
  }

  /**
   * A resume asks for the rest from no further than upstream had sent: bytes the mirror had not
   * yet taken in when the connection closed are lost with it, and asked for again.
   */
  private static void assertResumedFromAtMost(Seen resume, long sent) {
    assertThat(resume.headers().get("Range")).as("Range of the resume").matches("bytes=\\d+-");
    long from = Long.parseLong(resume.headers().get("Range").replaceAll("\\D", ""));
    assertThat(from).as("resumed from").isBetween(0L, sent);
  }

  // ---- paths ----

  private static String blobPath() {
    return "/v2/fault/blob/blobs/" + blob;
  }

  private static String manifestPath() {
    return "/v2/fault/app/manifests/" + image.manifestDigest();
  }

  private Path manifestFile() {
    String hex = image.manifestDigest().substring("sha256:".length());
    return mirror.cacheDir().resolve("manifests").resolve("sha256").resolve(hex.substring(0, 2)).resolve(hex);
  }

  private static BiPredicate<String, String> blobGet() {
    return matching("GET", ".*/blobs/" + blob);
  }

  private static BiPredicate<String, String> manifestGet() {
    return matching("GET", ".*/manifests/" + image.manifestDigest());
  }

  /** The blob's upstream GETs, in the order their responses started. */
  private List<Seen> blobGets() {
    return upstream.seen().stream().filter(s -> s.method().equals("GET") && s.uri().endsWith(blob)).toList();
  }

  private static Duration elapsed(long startedNanos) {
    return Duration.ofNanos(System.nanoTime() - startedNanos);
  }

  private static String hex(MessageDigest sha) {
    try {
      // A copy: the client may still append to the original.
      return "sha256:" + HexFormat.of().formatHex(((MessageDigest) sha.clone()).digest());
    } catch (CloneNotSupportedException e) {
      throw new IllegalStateException(e);
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
