package io.registrymirror.it;

import static io.registrymirror.it.ErrorResponseTest.assertError;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.MirrorUnderTest.Received;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An upstream that is slow: headers that never come, bodies that stall or drip. Each ends within
 * the configured timeouts, and a blob is resumed where it can be.
 */
@Timeout(60)
class SlowUpstreamTest extends FaultTestBase {

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

  /**
   * A manifest that drips, a few bytes at a time, never lets the idle timer fire: the answer
   * must still end, failed, within the idle timeout of its headers, and the tag's next pull
   * asks again.
   */
  @Test
  void aManifestBodyThatDripsFailsWithinTheIdleTimeout() {
    int length = image.manifest().length;
    // Slow enough that the whole manifest would take three idle timeouts.
    int bytesPerSecond = (int) Math.max(1, length / (3 * IDLE_TIMEOUT.toSeconds()));
    upstream.fault(manifestGet(), Fault.drip(bytesPerSecond), 1);
    long started = System.nanoTime();
    HttpResponse<byte[]> answer = mirror.get(manifestPath(), "Accept", DOCKER);
    assertError(answer, 503, "UNAVAILABLE", false);
    assertThat(new String(answer.body(), StandardCharsets.UTF_8)).contains("whole answer within");
    assertThat(elapsed(started)).isLessThan(IDLE_TIMEOUT.plus(QUICK));
    assertThat(Files.exists(manifestFile())).isFalse();

    HttpResponse<byte[]> again = mirror.get(manifestPath(), "Accept", DOCKER);
    assertThat(again.statusCode()).isEqualTo(200);
    assertThat(again.body()).isEqualTo(image.manifest());
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
}
