package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorProcess;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.stream.Collectors;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Manifests as large as clients accept, many at once, against the mirror with the heap it ships
 * with: the mirror stays up, every client gets the exact bytes or a clean "try again", and it
 * serves normally afterwards.
 */
@Timeout(600)
class ManifestMemoryTest extends MirrorTestBase {

  private static final String REPO = "memory/big";
  private static final int MANIFESTS = 200;
  /** Just under the 4 MiB both the registry and the mirror accept. */
  private static final int MANIFEST_BYTES = 4 * 1024 * 1024 - 4096;

  /** The seeded manifests' digests, all distinct; their bodies are not kept. */
  private static final List<String> DIGESTS = new ArrayList<>();

  private final HttpClient http = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(10))
      .build();

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    byte[] config = "{}".getBytes(StandardCharsets.UTF_8);
    String configDigest = seeder.pushBlob(REPO, config);
    SplittableRandom random = new SplittableRandom(11);
    for (int i = 0; i < MANIFESTS; i++) {
      DIGESTS.add(seeder.pushManifest(REPO, "m" + i, ImageSeeder.OCI_MANIFEST,
          largeManifest(configDigest, config.length, random)));
    }
  }

  /** An image manifest without layers whose annotation pads it to {@link #MANIFEST_BYTES}. */
  private static byte[] largeManifest(String configDigest, int configSize, SplittableRandom random) {
    JsonObject manifest = new JsonObject()
        .put("schemaVersion", 2)
        .put("mediaType", ImageSeeder.OCI_MANIFEST)
        .put("config", new JsonObject().put("mediaType", ImageSeeder.OCI_CONFIG)
            .put("digest", configDigest).put("size", configSize))
        .put("layers", new JsonArray())
        .put("annotations", new JsonObject().put("pad", ""));
    int pad = MANIFEST_BYTES - manifest.encode().length();
    StringBuilder text = new StringBuilder(pad);
    for (int i = 0; i < pad; i++) {
      text.append((char) ('a' + random.nextInt(26)));
    }
    manifest.getJsonObject("annotations").put("pad", text.toString());
    byte[] body = manifest.encode().getBytes(StandardCharsets.UTF_8);
    assertThat(body).hasSize(MANIFEST_BYTES);
    return body;
  }

  @Test
  void concurrentLargeManifestsNeverKillTheMirror(@TempDir Path work) throws Exception {
    try (MirrorProcess process = MirrorProcess.startAsShipped(registry.url(), work.resolve("cache"), work)) {
      List<CompletableFuture<Answer>> pending = new ArrayList<>();
      for (String digest : DIGESTS) {
        pending.add(get(process, digest));
      }
      List<Answer> answers = pending.stream().map(CompletableFuture::join).toList();

      Map<String, Long> outcome = answers.stream()
          .collect(Collectors.groupingBy(Answer::outcome, TreeMap::new, Collectors.counting()));
      System.out.printf("%d concurrent %d-byte manifests: %s, e.g. %s%n", MANIFESTS, MANIFEST_BYTES, outcome,
          answers.stream().filter(a -> a.status() != 200).limit(3).toList());
      assertThat(process.isAlive()).as("mirror process alive after %d concurrent manifests; log:%n%s",
          MANIFESTS, tail(process.log())).isTrue();
      SoftAssertions softly = new SoftAssertions();
      for (int i = 0; i < MANIFESTS; i++) {
        answers.get(i).assertRightBytesOrCleanRefusal(softly, DIGESTS.get(i));
      }
      softly.assertAll();
      assertThat(outcome.getOrDefault("200", 0L)).as("manifests served at once").isPositive();

      // Afterwards, one client at a time: every manifest is served, exactly.
      for (String digest : DIGESTS) {
        Answer answer = get(process, digest).join();
        assertThat(answer.outcome()).as("%s afterwards: %s", digest, answer).isEqualTo("200");
        assertThat(answer.digest()).as("bytes of %s afterwards", digest).isEqualTo(digest);
      }
      HttpResponse<String> tags = http.send(HttpRequest.newBuilder(
          URI.create(process.url() + "/v2/" + REPO + "/tags/list")).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(new JsonObject(tags.body()).getJsonArray("tags")).hasSize(MANIFESTS);

      // Every body read was given back, and the budget is the documented share of the heap.
      String metrics = http.send(HttpRequest.newBuilder(URI.create(process.url() + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString()).body();
      assertThat(gauge(metrics, "mirror_body_memory_bytes")).as("body memory held afterwards").isZero();
      assertThat(gauge(metrics, "mirror_body_memory_limit_bytes")).as("body memory limit, -Xmx128m")
          .isBetween(16.0 * 1024 * 1024, 32.0 * 1024 * 1024);
      assertThat(process.isAlive()).isTrue();
    }
  }

  private static double gauge(String metrics, String name) {
    return metrics.lines().filter(l -> l.startsWith(name + " ")).mapToDouble(l -> Double.parseDouble(l.substring(name.length() + 1)))
        .findFirst().orElseThrow(() -> new AssertionError(name + " not in /metrics"));
  }

  private CompletableFuture<Answer> get(MirrorProcess process, String digest) {
    HttpRequest request = HttpRequest.newBuilder(URI.create(process.url() + "/v2/" + REPO + "/manifests/" + digest))
        .header("Accept", ImageSeeder.OCI_MANIFEST)
        .timeout(Duration.ofSeconds(120))
        .build();
    return http.sendAsync(request, info -> HttpResponse.BodySubscribers.fromSubscriber(new Hashing(), h -> h))
        .thenApply(r -> new Answer(r.statusCode(), r.headers().firstValue("Retry-After").orElse(null),
            r.body().digest(), r.body().start(), null))
        .exceptionally(e -> new Answer(0, null, null, null, e.toString()));
  }

  private static String tail(String log) {
    return log.length() > 4000 ? log.substring(log.length() - 4000) : log;
  }

  /**
   * What a client got: the status, its Retry-After, the body's digest and first bytes (all of
   * an error), or the transport failure.
   */
  private record Answer(int status, String retryAfter, String digest, String start, String failure) {

    String outcome() {
      return failure != null ? "failed" : Integer.toString(status);
    }

    void assertRightBytesOrCleanRefusal(SoftAssertions softly, String expected) {
      if (status == 200) {
        softly.assertThat(digest).as("bytes served for %s", expected).isEqualTo(expected);
        return;
      }
      softly.assertThat(status).as("%s: %s", expected, this).isIn(429, 503);
      softly.assertThat(retryAfter).as("Retry-After for %s: %s", expected, this).isNotNull();
      if (start != null && start.startsWith("{")) {
        String code = new JsonObject(start).getJsonArray("errors").getJsonObject(0).getString("code");
        softly.assertThat(code).isIn("TOOMANYREQUESTS", "UNAVAILABLE");
      } else {
        softly.fail("%s: no OCI error body: %s", expected, this);
      }
    }
  }

  /** Digests a body as it arrives, keeping only its first 64 KiB: 200 of them never pile up. */
  private static final class Hashing implements Flow.Subscriber<List<ByteBuffer>> {

    private final MessageDigest sha256;
    private final StringBuilder start = new StringBuilder();

    Hashing() {
      try {
        sha256 = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }

    String digest() {
      return "sha256:" + HexFormat.of().formatHex(sha256.digest());
    }

    String start() {
      return start.toString();
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
      subscription.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(List<ByteBuffer> items) {
      for (ByteBuffer b : items) {
        if (start.length() < 65536) {
          ByteBuffer copy = b.duplicate();
          byte[] bytes = new byte[Math.min(copy.remaining(), 65536 - start.length())];
          copy.get(bytes);
          start.append(new String(bytes, StandardCharsets.UTF_8));
        }
        sha256.update(b);
      }
    }

    @Override
    public void onError(Throwable throwable) {
      // The client's future fails with it.
    }

    @Override
    public void onComplete() {
      // The finisher hands this subscriber over once it is called.
    }
  }
}
