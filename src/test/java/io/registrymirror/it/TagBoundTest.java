package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tags.maxTracked}: past it, the least recently pulled tags are forgotten, on disk too. */
class TagBoundTest extends MirrorTestBase {

  private static final int MAX = 5;
  private static final int TAGS = 9;

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    for (int i = 0; i < TAGS; i++) {
      seeder.pushImage("team/app", "v" + i, 1, 1_000, "docker");
    }
  }

  @Test
  void theLeastRecentlyPulledTagsAreForgottenPastTheBound(Vertx vertx, @TempDir Path cache) throws Exception {
    mirror.close();
    mirror = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "", "tags: {maxTracked: " + MAX + "}");
    for (int i = 0; i < TAGS; i++) {
      assertThat(mirror.get("/v2/team/app/manifests/v" + i, "Accept", ImageSeeder.DOCKER_MANIFEST).statusCode())
          .isEqualTo(200);
    }
    eventually(Duration.ofSeconds(10), () -> tracked().size() <= MAX, "the tracked tags back within the bound");
    List<String> tags = tracked();
    // The latest pulls stay; the earliest go.
    assertThat(tags).contains("v" + (TAGS - 1), "v" + (TAGS - 2)).doesNotContain("v0", "v1");
    assertThat(CacheContents.files(cache.resolve("tags"))).hasSizeLessThanOrEqualTo(MAX);
  }

  private List<String> tracked() {
    JsonObject body = new JsonObject(new String(mirror.get("/api/v1/tags").body()));
    JsonArray tags = body.getJsonArray("tags");
    return tags.stream().map(t -> ((JsonObject) t).getString("tag")).toList();
  }
}
