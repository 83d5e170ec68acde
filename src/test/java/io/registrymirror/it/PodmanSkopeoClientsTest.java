package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.Podman;
import io.registrymirror.testing.Required;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** podman and skopeo pulling through the mirror, as {@link ClientsTestBase} sets it up. */
@Timeout(240)
class PodmanSkopeoClientsTest extends ClientsTestBase {

  @Test
  void podmanPullsThroughBothMirrorsOneWithAPathPrefix(@TempDir Path work) throws Exception {
    Required.podman();
    try (Podman podman = Podman.create(registriesConf(work), caDir)) {
      String demoRef = HUB + "/" + demo.repo() + ":1.0";
      podman.pull(demoRef);
      assertPodmanImage(podman.inspect(demoRef), HUB + "/" + demo.repo(), demo);

      String toolRef = PRIVATE + "/" + tool.repo() + ":2.0";
      podman.pull(toolRef);
      assertPodmanImage(podman.inspect(toolRef), PRIVATE + "/" + tool.repo(), tool);

      String multiRef = HUB + "/" + multi.repo() + ":2.0";
      podman.pull(multiRef, "--platform", "linux/arm64/v8");
      JsonObject inspected = podman.inspect(multiRef);
      assertPodmanImage(inspected, HUB + "/" + multi.repo(), arm64());
      assertThat(inspected.getJsonArray("RepoDigests").getList())
          .contains(HUB + "/" + multi.repo() + "@" + multi.digest());
    }
    assertServedByHub(demo);
    assertServedByHub(arm64());
    // The mirror took the registry's name off the path before it went upstream.
    assertServedByRegistry(tool);
  }

  @Test
  void skopeoCopiesThroughTheRegistriesConf(@TempDir Path work) throws Exception {
    Required.skopeo();
    Path conf = registriesConf(work);

    skopeoCopy(conf, HUB + "/" + app.repo() + ":1.0", work.resolve("app"));
    assertDirLayout(work.resolve("app"), app);

    skopeoCopy(conf, PRIVATE + "/" + tool.repo() + ":2.0", work.resolve("tool"));
    assertDirLayout(work.resolve("tool"), tool);

    // Every platform of the index: skopeo keeps each child manifest under its digest's hex.
    Path all = work.resolve("multi");
    skopeoCopy(conf, HUB + "/" + multi.repo() + ":2.0", all, "--all");
    assertThat(Files.readAllBytes(all.resolve("manifest.json"))).isEqualTo(multi.body());
    for (Image child : multi.children()) {
      String hex = child.manifestDigest().substring("sha256:".length());
      assertThat(Files.readAllBytes(all.resolve(hex + ".manifest.json"))).isEqualTo(child.manifest());
      for (var blob : child.blobs().entrySet()) {
        assertThat(ImageSeeder.sha256(all.resolve(blob.getKey().substring("sha256:".length()))))
            .isEqualTo(blob.getKey());
      }
    }

    assertServedByHub(app);
    assertServedByRegistry(tool);
  }
}
