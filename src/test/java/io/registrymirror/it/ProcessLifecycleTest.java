package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mirror as an operator runs it: its own process, serving a pull through from upstream, then
 * stopped by a signal. Nothing runs in this JVM but the upstream it mirrors.
 */
class ProcessLifecycleTest {

  private static ReferenceRegistry registry;
  private static Image image;

  @BeforeAll
  static void seed() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
    image = new ImageSeeder(registry.url()).pushImage("ops/app", "1.0", 1, 20_000, "docker");
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
      registry = null;
    }
  }

  @Test
  void aPullGoesThroughAndSigtermStopsTheProcessPromptly(@TempDir Path work) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    try (Forwarder upstream = Forwarder.start(registry.port());
        MirrorProcess process = MirrorProcess.start(upstream.url(), work.resolve("cache"), work, List.of())) {
      HttpResponse<byte[]> manifest = http.send(HttpRequest.newBuilder(
              URI.create(process.url() + "/v2/ops/app/manifests/1.0"))
          .header("Accept", ImageSeeder.DOCKER_MANIFEST).build(), HttpResponse.BodyHandlers.ofByteArray());
      assertThat(manifest.statusCode()).isEqualTo(200);
      assertThat(manifest.body()).isEqualTo(image.manifest());
      String layer = image.layerDigests().get(0);
      HttpResponse<byte[]> blob = http.send(HttpRequest.newBuilder(
          URI.create(process.url() + "/v2/ops/app/blobs/" + layer)).build(), HttpResponse.BodyHandlers.ofByteArray());
      assertThat(blob.statusCode()).isEqualTo(200);
      assertThat(blob.body()).isEqualTo(image.blobs().get(layer));
      assertThat(upstream.count("GET", "/v2/ops/app/blobs/" + layer)).as("blob fetched from upstream").isEqualTo(1);

      // A stop on SIGTERM is the normal end of the mirror's life: exit status 0, not 143 (128 + SIGTERM).
      assertThat(process.terminate(Duration.ofSeconds(20))).as("exit status; log:%n%s", process.log()).isZero();
      assertThat(process.log()).contains("event=mirror.stopped");
    }
  }
}
