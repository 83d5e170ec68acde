package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the mirror's process writes to standard error, as a log pipeline or an operator reads it:
 * with {@code log.format: json}, every line a JSON object with the event's fields at its top level;
 * in text, logfmt lines; an access line per request unless {@code log.access: false}; and never a
 * secret, whichever headers and queries clients send, and whatever Logback configuration lies around.
 */
@Timeout(120)
class LogOutputTest extends MirrorTestBase {

  private static final String STRAY_CONFIGURATION = """
      <configuration debug="true" scan="true" scanPeriod="1 seconds">
        <appender name="FILE" class="ch.qos.logback.core.FileAppender">
          <file>%s</file>
          <encoder><pattern>STRAY %%msg%%n</pattern></encoder>
        </appender>
        <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
          <encoder><pattern>STRAY %%msg%%n</pattern></encoder>
        </appender>
        <root level="TRACE"><appender-ref ref="FILE"/><appender-ref ref="CONSOLE"/></root>
      </configuration>
      """;

  private static Image image;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private final ObjectMapper json = new ObjectMapper();

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("logs/app", "1.0", 1, 20_000, "docker");
  }

  @Test
  void jsonLinesCarryEveryFieldAtTheTopAndNoSecretWhateverLogbackConfigurationIsAround(@TempDir Path work)
      throws Exception {
    // A logback.xml on the class path (the boot class path is searched first for resources), and
    // another named by the system property Logback reads: both would log elsewhere, and in another format.
    Path stray = Files.createDirectories(work.resolve("stray"));
    Path strayLog = work.resolve("stray.log");
    Files.writeString(stray.resolve("logback.xml"), STRAY_CONFIGURATION.formatted(strayLog));
    Path named = Files.writeString(work.resolve("named.xml"), STRAY_CONFIGURATION.formatted(strayLog));
    String layer = image.layerDigests().get(0);
    try (MirrorProcess process = MirrorProcess.startWith(upstream.url(), work.resolve("cache"), work,
            List.of("-Xbootclasspath/a:" + stray, "-Dlogback.configurationFile=" + named),
            "username: mirror-bot\npassword: upstream-password-SECRET-1\n", """
            admin:
              token: admin-token-0123456789-SECRET-2
            log:
              format: json
              level: debug
            """)) {
      HttpResponse<byte[]> manifest = get(process, "/v2/logs/app/manifests/1.0?ns=local&token=query-token-SECRET-3",
          "Authorization", "Bearer client-token-SECRET-4", "Accept", ImageSeeder.DOCKER_MANIFEST);
      assertThat(manifest.statusCode()).isEqualTo(200);
      HttpResponse<byte[]> blob = get(process, "/v2/logs/app/blobs/" + layer + "?access_token=SECRET-5&ns=local",
          "Authorization", "Basic " + Base64.getEncoder().encodeToString(
              "someone:client-password-SECRET-6".getBytes(StandardCharsets.UTF_8)));
      assertThat(blob.body()).isEqualTo(image.blobs().get(layer));
      assertThat(get(process, "/api/v1/cache/repositories", "Authorization", "Bearer admin-guess-SECRET-7")
          .statusCode()).isEqualTo(401);
      assertThat(process.terminate(Duration.ofSeconds(30))).isZero();

      String output = process.log();
      assertThat(output).doesNotContain("SECRET").doesNotContain("STRAY");
      assertThat(strayLog).doesNotExist();
      List<JsonNode> lines = new ArrayList<>();
      for (String line : output.strip().split("\n")) {
        JsonNode node = json.readTree(line);
        assertThat(node.isObject()).as("a JSON object: %s", line).isTrue();
        assertThat(node.path("ts").isTextual() && node.path("level").isTextual() && node.path("logger").isTextual())
            .as("ts, level and logger in %s", line).isTrue();
        lines.add(node);
      }
      JsonNode filled = event(lines, "blob.filled");
      assertThat(filled.path("level").asText()).isEqualTo("INFO");
      assertThat(filled.path("logger").asText()).isEqualTo("BlobFetch");
      assertThat(filled.path("digest").asText()).isEqualTo(layer);
      assertThat(filled.path("bytes").isNumber()).isTrue();
      assertThat(filled.path("bytes").asLong()).isEqualTo(image.blobs().get(layer).length);

      // Besides the version checks that tell the mirror is up.
      List<JsonNode> access = lines.stream().filter(l -> l.path("logger").asText().equals("access")
          && !l.path("path").asText().equals("/v2/")).toList();
      assertThat(access).hasSize(3);
      assertAccess(access.get(0), "/v2/logs/app/manifests/1.0?ns=local", 200, manifest.body().length, "miss");
      assertAccess(access.get(1), "/v2/logs/app/blobs/" + layer + "?ns=local", 200, blob.body().length, "miss");
      assertThat(access.get(2).path("path").asText()).isEqualTo("/api/v1/cache/repositories");
      assertThat(access.get(2).path("status").asInt()).isEqualTo(401);
      assertThat(lines.get(lines.size() - 1).path("event").asText()).as("the last line").isEqualTo("mirror.stopped");
    }
  }

  @Test
  void textLinesAreLogfmtAndTheAccessLogCanBeTurnedOff(@TempDir Path work) throws Exception {
    try (MirrorProcess process = MirrorProcess.start(upstream.url(), work.resolve("cache"), work, List.of(),
        "log:\n  access: false\n")) {
      assertThat(get(process, "/v2/logs/app/manifests/1.0", "Accept", ImageSeeder.DOCKER_MANIFEST).statusCode())
          .isEqualTo(200);
      assertThat(process.terminate(Duration.ofSeconds(30))).isZero();
      List<String> lines = List.of(process.log().strip().split("\n"));
      assertThat(lines).allMatch(l -> l.matches("ts=\\S+ level=(error|warn|info) logger=\\S+ (event|msg)=.*"),
          "logfmt lines at info and above");
      assertThat(lines).anyMatch(l -> l.contains("logger=RegistryMirror event=mirror.started listen=" + process.hostPort()));
      assertThat(lines).noneMatch(l -> l.contains("logger=access"));
      assertThat(lines.get(lines.size() - 1)).contains("event=mirror.stopped");
    }
  }

  private static JsonNode event(List<JsonNode> lines, String event) {
    return lines.stream().filter(l -> l.path("event").asText().equals(event)).findFirst()
        .orElseThrow(() -> new AssertionError("no " + event + " in " + lines));
  }

  private static void assertAccess(JsonNode line, String path, int status, long bytes, String cache) {
    assertThat(line.path("event").asText()).isEqualTo("request");
    assertThat(line.path("method").asText()).isEqualTo("GET");
    assertThat(line.path("path").asText()).isEqualTo(path);
    assertThat(line.path("status").isInt() && line.path("status").asInt() == status).as("status in %s", line).isTrue();
    assertThat(line.path("bytes").isNumber() && line.path("bytes").asLong() == bytes).as("bytes in %s", line).isTrue();
    assertThat(line.path("ms").isNumber()).as("ms in %s", line).isTrue();
    assertThat(line.path("cache").asText()).isEqualTo(cache);
    assertThat(line.path("upstream").asText()).isEqualTo("local");
    assertThat(line.path("client").asText()).isEqualTo("127.0.0.1");
  }

  private HttpResponse<byte[]> get(MirrorProcess process, String path, String... headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(process.url() + path));
    for (int i = 0; i + 1 < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
  }
}
