package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import io.registrymirror.testing.TestLimits;
import io.registrymirror.upstream.BlobDownload;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiPredicate;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

/**
 * An upstream that misbehaves (cut connections, corrupt or mis-sized bodies, error statuses,
 * refused connections, drips and stalls), one fault per test ({@link FaultTest},
 * {@link UpstreamFailureTest}, {@link SlowUpstreamTest}), each held to the same invariants: no
 * client receives a complete response whose bytes do not match the digest;
 * nothing that does not match enters the cache; the mirror keeps answering other requests; a
 * client that resumes with {@code Range} ends up with the right blob; and nothing outlasts the
 * configured timeouts. (A failing token service is in {@link UpstreamAuthTest}, an unreachable
 * upstream with nothing cached in {@link ErrorResponseTest}.)
 */
abstract class FaultTestBase extends MirrorTestBase {

  static final long SIZE = 16L << 20;
  static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  // The mirror's limits: the timeouts every mirror under test has (TestLimits), the rate window
  // set in upstreamYaml below, and the resumes the mirror allows one transfer.
  static final Duration CONNECT_TIMEOUT = TestLimits.CONNECT_TIMEOUT;
  static final Duration IDLE_TIMEOUT = TestLimits.IDLE_TIMEOUT;
  static final Duration RATE_WINDOW = Duration.ofSeconds(2);
  static final int RESUMES = BlobDownload.RESUMES;

  /** Far below every timeout: a failure that needs no waiting must not be found by waiting. */
  static final Duration QUICK = Duration.ofSeconds(3);
  /** An upstream that stalls or never answers: a connect and an idle timeout, and some slack. */
  static final Duration TIMEOUTS = CONNECT_TIMEOUT.plus(IDLE_TIMEOUT).plusSeconds(2);
  /**
   * A drip through every try: one rate window per try, and one more for where the first check
   * falls, plus slack.
   */
  static final Duration DRIP_BOUND = RATE_WINDOW.multipliedBy(RESUMES + 2).plusSeconds(2);

  @TempDir
  static Path files;
  static String blob;
  static Image image;
  static Image other;

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

  // ---- the client's side ----

  /** One response as a client read it: where it started, how many bytes, whether it broke off. */
  record Transfer(int status, long start, long bytes, boolean broken) {
  }

  /** What a resuming client ended up with, and the transfers it took. */
  record Pull(List<Transfer> transfers, long bytes, String digest, int restarts) {
    boolean correct() {
      return bytes == SIZE && blob.equals(digest);
    }
  }

  /**
   * Pulls the blob as containerd does: after a broken transfer it asks for the rest with
   * {@code Range: bytes=<received>-}; with every byte in hand it checks the digest, and starts
   * over if it is wrong. Whatever happens, a complete 200 must carry exactly the blob.
   */
  Pull pullResuming(int maxTransfers) throws IOException, InterruptedException {
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
  Received fetchCounting(String path, AtomicLong received) throws IOException, InterruptedException {
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
  void assertCacheHoldsOnlyVerifiedContent() {
    eventually(Duration.ofSeconds(10), () -> mirror.filesUnder("tmp") == 0, "partial files to be deleted");
    assertThat(CacheContents.mismatches(mirror.cacheDir())).as("cached files that do not match their digest")
        .isEmpty();
  }

  /** The mirror answers a normal pull of another image, at once. */
  void assertMirrorAnswers() {
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
  static void assertResumedFromAtMost(Seen resume, long sent) {
    assertThat(resume.headers().get("Range")).as("Range of the resume").matches("bytes=\\d+-");
    long from = Long.parseLong(resume.headers().get("Range").replaceAll("\\D", ""));
    assertThat(from).as("resumed from").isBetween(0L, sent);
  }

  // ---- paths ----

  static String blobPath() {
    return "/v2/fault/blob/blobs/" + blob;
  }

  static String manifestPath() {
    return "/v2/fault/app/manifests/" + image.manifestDigest();
  }

  Path manifestFile() {
    String hex = image.manifestDigest().substring("sha256:".length());
    return mirror.cacheDir().resolve("manifests").resolve("sha256").resolve(hex.substring(0, 2)).resolve(hex);
  }

  static BiPredicate<String, String> blobGet() {
    return matching("GET", ".*/blobs/" + blob);
  }

  static BiPredicate<String, String> manifestGet() {
    return matching("GET", ".*/manifests/" + image.manifestDigest());
  }

  /** The blob's upstream GETs, in the order their responses started. */
  List<Seen> blobGets() {
    return upstream.seen().stream().filter(s -> s.method().equals("GET") && s.uri().endsWith(blob)).toList();
  }

  static Duration elapsed(long startedNanos) {
    return Duration.ofNanos(System.nanoTime() - startedNanos);
  }

  static String hex(MessageDigest sha) {
    try {
      // A copy: the client may still append to the original.
      return "sha256:" + HexFormat.of().formatHex(((MessageDigest) sha.clone()).digest());
    } catch (CloneNotSupportedException e) {
      throw new IllegalStateException(e);
    }
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
