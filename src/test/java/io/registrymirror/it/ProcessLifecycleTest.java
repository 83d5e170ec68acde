package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.MirrorProcess;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mirror as an operator runs it: its own process, stopped by a signal. */
class ProcessLifecycleTest extends MirrorTestBase {

  @Test
  void sigtermStopsTheProcessPromptly(@TempDir Path work) throws Exception {
    try (MirrorProcess process = MirrorProcess.start(upstream.url(), work.resolve("cache"), work, List.of())) {
      HttpResponse<String> v2 = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create(process.url() + "/v2/")).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(v2.statusCode()).isEqualTo(200);
      // 143 = 128 + SIGTERM: the JVM ran its shutdown hook and exited.
      assertThat(process.terminate(Duration.ofSeconds(20))).as("exit status; log:%n%s", process.log()).isEqualTo(143);
      assertThat(process.log()).contains("event=mirror.stopped");
    }
  }
}
