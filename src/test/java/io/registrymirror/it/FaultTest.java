package io.registrymirror.it;

import static io.registrymirror.it.ErrorResponseTest.assertError;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder.Seen;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An upstream whose transfer is cut, or whose body disagrees with its Content-Length: what
 * follows a cut (resumes, validators, a corrupt rest) and what a mis-sized body may never become.
 */
@Timeout(60)
class FaultTest extends FaultTestBase {

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
}
