package io.registrymirror.it;

import static io.registrymirror.it.ErrorResponseTest.assertError;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An upstream that answers with an error status, or goes away in the middle of a transfer: the
 * client learns at once, and nothing of it is remembered.
 */
@Timeout(60)
class UpstreamFailureTest extends FaultTestBase {

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
}
