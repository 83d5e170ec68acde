package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Containerd;
import io.registrymirror.testing.Dockerd;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.Required;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** dockerd and containerd pulling through the mirror, as {@link ClientsTestBase} sets it up. */
@Timeout(240)
class DockerContainerdClientsTest extends ClientsTestBase {

  @Test
  void dockerPullsOfficialImagesWithAndWithoutLibraryAndUserImages() throws Exception {
    Required.dockerd();
    String official = "e2edemo-" + SUFFIX;
    String user = "e2eacme-" + SUFFIX + "/app";
    try (Dockerd docker = Dockerd.start(mirror.hostPort(), certificate.certPem())) {
      docker.docker("pull", official + ":1.0");
      assertDockerImage(docker.inspect(official + ":1.0"), official + "@" + demo.manifestDigest(), demo);

      // The same image named with library/: removed first, so that it is pulled again, not found.
      // docker sends both names to a mirror as library/…, the form Docker Hub knows.
      docker.docker("image", "rm", official + ":1.0");
      docker.docker("pull", "library/" + official + ":1.0");
      assertDockerImage(docker.inspect("library/" + official + ":1.0"), official + "@" + demo.manifestDigest(), demo);

      docker.docker("pull", user + ":1.0");
      assertDockerImage(docker.inspect(user + ":1.0"), user + "@" + app.manifestDigest(), app);

      // Another platform than this machine's, so that the choice is the client's, not the default.
      String multiName = "e2emulti-" + SUFFIX;
      docker.docker("pull", "--platform", "linux/arm64/v8", multiName + ":2.0");
      // docker records the digest it pulled by, the index's, not the platform's manifest.
      assertDockerImage(docker.inspect(multiName + ":2.0"), multiName + "@" + multi.digest(), arm64());
    }
    assertServedByHub(demo);
    assertServedByHub(app);
    assertServedByHub(arm64());
    assertThat(registry.seen()).isEmpty();
  }

  @Test
  void containerdPullsAgainWhileBothUpstreamsAreDown() throws Exception {
    Required.containerd();
    String demoRef = HUB + "/" + demo.repo() + ":1.0";
    String toolRef = PRIVATE + "/" + tool.repo() + ":2.0";
    try (Containerd before = Containerd.start()) {
      before.mirror(HUB, "https://registry-1.docker.io", mirror.hostPort(), certificate.certPem());
      before.mirror(PRIVATE, "https://" + PRIVATE, mirror.hostPort(), certificate.certPem());
      before.pull(demoRef);
      before.pull(toolRef);
    }
    hubRegistry.stop();
    privateRegistry.stop();
    try (Containerd offline = Containerd.start()) {
      offline.mirror(HUB, "https://registry-1.docker.io", mirror.hostPort(), certificate.certPem());
      offline.mirror(PRIVATE, "https://" + PRIVATE, mirror.hostPort(), certificate.certPem());
      offline.pull(demoRef);
      assertContainerdImage(offline, demoRef, demo);
      // With a TTL of zero, each tag was asked upstream again and answered from the stale cache.
      offline.pull(toolRef);
      assertContainerdImage(offline, toolRef, tool);
    } finally {
      hubRegistry.restart();
      privateRegistry.restart();
    }
  }

  @Test
  void containerdPullsFromBothRegistriesByNamespaceAndAnIndex() throws Exception {
    Required.containerd();
    try (Containerd containerd = Containerd.start()) {
      containerd.mirror(HUB, "https://registry-1.docker.io", mirror.hostPort(), certificate.certPem());
      containerd.mirror(PRIVATE, "https://" + PRIVATE, mirror.hostPort(), certificate.certPem());

      String demoRef = HUB + "/" + demo.repo() + ":1.0";
      containerd.pull(demoRef);
      assertContainerdImage(containerd, demoRef, demo);

      // containerd names the registry in ?ns=registry.example.test, which is all the mirror has to route by.
      String toolRef = PRIVATE + "/" + tool.repo() + ":2.0";
      containerd.pull(toolRef);
      assertContainerdImage(containerd, toolRef, tool);

      String multiRef = HUB + "/" + multi.repo() + ":2.0";
      containerd.pull(multiRef, "--all-platforms");
      assertThat(containerd.imageDigest(multiRef)).isEqualTo(multi.digest());
      assertThat(containerd.content(multi.digest())).isEqualTo(new String(multi.body(), StandardCharsets.UTF_8));
      for (Image child : multi.children()) {
        assertContainerdContent(containerd, child);
      }
    }
    assertServedByHub(demo);
    multi.children().forEach(ClientsTestBase::assertServedByHub);
    assertServedByRegistry(tool);
  }
}
