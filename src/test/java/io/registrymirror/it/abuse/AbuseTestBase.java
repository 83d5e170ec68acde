package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.Expectation.anyAnswer;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.StraceLog;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

/**
 * The setting of the abuse suite: the mirror running as its own process under {@code strace},
 * behind a counting forwarder in front of a reference registry, with the listener limits the slow
 * clients meet. Whatever a test does to it, afterwards the mirror still serves exact pulls, from
 * upstream and from its cache, and is still running; and its trace shows that no file derived
 * from a request was touched outside the cache directory, nothing was written outside it at all,
 * and it connected to no host but its upstream. Each test prints its figures in one block, as the
 * README lists them.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
abstract class AbuseTestBase {

  /** The generator's seed: a failure names a request that the same seed generates again. */
  static final long SEED = 0xAB05EL;
  /** The listener's limits, as the README's figures quote them. */
  static final int CONNECTIONS_PER_CLIENT = 200;
  static final Duration HEADER_TIMEOUT = Duration.ofSeconds(4);

  private static ReferenceRegistry registry;
  /** Its paths are the targets of hostile ranges, headers and methods. */
  static Image image;
  /** Never requested before the final pulls, so the first of them goes upstream after all the abuse. */
  private static Image untouched;

  /** What one test does to the mirror, before the checks every test shares. */
  interface Abuse {
    void run(Session session) throws Exception;
  }

  /** The traced mirror, its upstream, a client for it, and what the test collects. */
  record Session(SoftAssertions softly, AbuseFigures figures, Forwarder upstream, MirrorProcess mirror,
      AbuseClient client) {
  }

  @BeforeAll
  static void seed() throws Exception {
    Required.referenceRegistry();
    Required.strace();
    registry = ReferenceRegistry.start();
    ImageSeeder seeder = new ImageSeeder(registry.url(), 7);
    image = seeder.pushImage("abuse/app", "1.0", 2, 40_000, "docker");
    untouched = seeder.pushImage("abuse/fresh", "2.0", 2, 40_000, "oci");
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
      registry = null;
    }
  }

  /**
   * Runs {@code abuse} against a traced mirror working in {@code work} with the default limits,
   * then the shared checks. The short header deadline of the slow-client run is not used here:
   * it also closes keep-alive connections idle between requests, and a client that reuses one
   * just as it closes sees a broken answer that says nothing about the abuse.
   */
  static void underStrace(Path work, String title, Abuse abuse) throws Exception {
    underStrace(work, title, "", abuse);
  }

  /** The same with the slow-client limits: a short header deadline and a per-client cap. */
  static void underStraceWithSlowClientLimits(Path work, String title, Abuse abuse) throws Exception {
    underStrace(work, title, "limits:\n  headerTimeout: " + HEADER_TIMEOUT.toSeconds() + "s\n  connectionsPerClient: "
        + CONNECTIONS_PER_CLIENT + "\n", abuse);
  }

  private static void underStrace(Path work, String title, String limits, Abuse abuse) throws Exception {
    Path cache = work.resolve("cache");
    Path trace = work.resolve("mirror.strace");
    SoftAssertions softly = new SoftAssertions();
    AbuseFigures figures = new AbuseFigures(title);
    try (Forwarder upstream = Forwarder.start(registry.port())) {
      MirrorProcess mirror = MirrorProcess.start(upstream.url(), cache, work, StraceLog.command(trace), limits);
      try {
        AbuseClient client = new AbuseClient(mirror.hostPort());
        abuse.run(new Session(softly, figures, upstream, mirror, client));

        // Afterwards the mirror still serves exact pulls, from upstream and then from its cache.
        pullIntact(softly, client, untouched);
        pullIntact(softly, client, untouched);
        figures.mirrorAlive = ProcessHandle.of(mirror.pid()).stream().flatMap(ProcessHandle::children)
            .anyMatch(ProcessHandle::isAlive);
        softly.assertThat(figures.mirrorAlive).as("the mirror is still running").isTrue();
      } finally {
        StraceLog.stop(mirror);
      }
      TraceCheck.check(softly, figures, trace, cache, upstream.port());
    }
    figures.print();
    softly.assertAll();
  }

  /**
   * Manifest by tag and by digest, and every blob, through the mirror: exactly the pushed bytes.
   * Returns how long it took, in milliseconds.
   */
  static long pullIntact(SoftAssertions softly, AbuseClient client, Image img) {
    long started = System.nanoTime();
    String base = "/v2/" + img.repo();
    List<String[]> accept = List.<String[]>of(new String[] {"Accept", img.mediaType()});
    for (String ref : List.of(img.tag(), img.manifestDigest())) {
      Reply r = client.send(new Case("pull", "GET", base + "/manifests/" + ref, accept, null, null, anyAnswer()));
      softly.assertThat(r.status()).as("pull %s:%s", img.repo(), ref).isEqualTo(200);
      softly.assertThat(r.body()).as("manifest %s:%s", img.repo(), ref).isEqualTo(img.manifest());
      softly.assertThat(r.header("docker-content-digest")).isEqualTo(img.manifestDigest());
    }
    img.blobs().forEach((digest, bytes) -> {
      Reply r = client.send(new Case("pull", "GET", base + "/blobs/" + digest, List.of(), null, null, anyAnswer()));
      softly.assertThat(r.status()).as("pull blob %s", digest).isEqualTo(200);
      softly.assertThat(r.body()).as("blob %s", digest).isEqualTo(bytes);
    });
    return (System.nanoTime() - started) / 1_000_000;
  }
}
