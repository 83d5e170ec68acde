package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Exec;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.RedirectingRegistry;
import io.registrymirror.testing.Required;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An upstream that redirects every request, manifests included, to another registry, as
 * registry.k8s.io does: {@code skopeo} pulls through the mirror, each manifest and blob is fetched
 * from the registry behind once, and the token the front handed out never goes there.
 */
class RedirectingUpstreamTest extends MirrorTestBase {

  private static final Path SKOPEO = Path.of("/usr/bin/skopeo");

  private static Image pause;
  private RedirectingRegistry front;

  @BeforeAll
  static void seed() throws Exception {
    Required.skopeo();
    pause = new ImageSeeder(registry.url()).pushImage("k8s-artifacts-prod/images/pause", "3.9", 3, 300_000, "oci");
  }

  /** The mirror's upstream is the front, which sends everything to the counting forwarder. */
  @Override
  protected String upstreamUrl() {
    front = RedirectingRegistry.start(upstream.url() + "/v2/k8s-artifacts-prod/images");
    return front.url();
  }

  /** Every tag pull asks upstream, so that the second pull shows a revalidation through the front. */
  @Override
  protected String upstreamYaml() {
    return "tagTtl: 0s";
  }

  @AfterEach
  void stopFront() {
    front.close();
  }

  @Test
  void pullsAnImageWhoseEveryRequestIsRedirected(@TempDir Path out) throws Exception {
    Path dir = out.resolve("pause");
    copy("pause:3.9", dir);

    assertThat(Files.readAllBytes(dir.resolve("manifest.json"))).isEqualTo(pause.manifest());
    for (String digest : pause.blobs().keySet()) {
      Path blob = dir.resolve(digest.substring("sha256:".length()));
      assertThat(ImageSeeder.sha256(blob)).as(digest).isEqualTo(digest);
    }
    assertThat(upstream.count("GET", ".*/manifests/.*")).isEqualTo(1);
    for (String digest : pause.blobs().keySet()) {
      assertThat(upstream.count("GET", "/v2/k8s-artifacts-prod/images/pause/blobs/" + digest + "\\?rid=.*"))
          .as(digest).isEqualTo(1);
    }
    assertThat(upstream.seen()).isNotEmpty()
        .allSatisfy(seen -> assertThat(seen.headers().get("Authorization")).as(seen.uri()).isNull());
    List<RedirectingRegistry.Request> toFront = front.requests();
    assertThat(toFront).filteredOn(r -> r.path().contains("/manifests/")).isNotEmpty();
    assertThat(toFront).filteredOn(r -> r.path().startsWith("/v2/") && r.authorization() != null)
        .isNotEmpty()
        .allSatisfy(r -> assertThat(r.authorization()).isEqualTo("Bearer " + front.token()));

    // Again: the tag is revalidated through the front with a HEAD, the rest comes from the cache.
    upstream.clear();
    copy("pause:3.9", out.resolve("again"));
    assertThat(Files.readAllBytes(out.resolve("again").resolve("manifest.json"))).isEqualTo(pause.manifest());
    assertThat(upstream.count("HEAD", ".*/manifests/3.9.*")).isEqualTo(1);
    assertThat(upstream.count("GET", ".*")).isZero();
  }

  private void copy(String reference, Path dir) {
    Exec.run(Duration.ofSeconds(120), Map.of(), List.of(SKOPEO.toString(), "--insecure-policy", "copy",
        "--src-tls-verify=false", "--retry-times", "0", "docker://" + mirror.hostPort() + "/" + reference,
        "dir:" + dir));
  }
}
