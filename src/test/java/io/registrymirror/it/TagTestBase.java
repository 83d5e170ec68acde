package io.registrymirror.it;


import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The setting of the tag tests: a mirror whose refresher looks as often as a test needs, and
 * what a test reads back from it (a tag from the tag API, a series from {@code /metrics}).
 */
abstract class TagTestBase extends MirrorTestBase {

  static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  static final Duration SOON = Duration.ofSeconds(20);
  static final String DEFERRED = "mirror_tag_refreshes_total{result=\"deferred\",upstream=\"local\"}";

  final ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());

  /** A mirror whose refresher looks often, with the given extra top-level YAML for tags. */
  MirrorUnderTest tracking(Vertx vertx, Path cache, String tagTtl, String interval, String rules,
      String webhooks) {
    return MirrorUnderTest.start(vertx, "local", upstream.url(), cache,
        "tagTtl: " + tagTtl + "\nrefreshBudget: 100000", """
        tags:
          refreshInterval: %s
          webhooks: [%s]
          rules: [%s]
        """.formatted(interval, webhooks, rules));
  }

  static JsonObject tag(MirrorUnderTest m, String repository, String tag) {
    HttpResponse<byte[]> r = m.get("/api/v1/tags/local/" + repository + "/" + tag);
    return r.statusCode() == 200 ? new JsonObject(new String(r.body())) : new JsonObject();
  }

  /** Waits for 20 more deferred revalidations, and checks that no HEAD went upstream meanwhile. */
  /** The series' value, 0 while it does not exist yet. */
  static double metricOr(MirrorUnderTest m, String series) {
    String metrics = new String(m.get("/metrics").body());
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim())).orElse(0.0);
  }

  static double metric(MirrorUnderTest m, String series) {
    String metrics = new String(m.get("/metrics").body());
    return metrics.lines().filter(l -> l.startsWith(series + " ")).findFirst()
        .map(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
        .orElseThrow(() -> new AssertionError("no series " + series + " in:\n" + metrics));
  }
}
