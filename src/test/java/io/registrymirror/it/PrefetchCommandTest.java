package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code java -jar registry-mirror.jar prefetch}, run as its own process against a running
 * mirror as an operator would: it waits for each image, says how it went, and its exit status
 * tells a script whether every image is in the cache.
 */
@Timeout(120)
class PrefetchCommandTest extends MirrorTestBase {

  private static final String TOKEN = "cli-admin-token-0123456789";

  private final ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());

  /** What the command printed and how it exited. */
  private record Run(int status, String output) {}

  @Test
  void prefetchedImagesAreCachedAndTheCommandSucceeds() throws Exception {
    Image one = seeder.pushImage("cli/one", "1.0", 2, 200_000, "docker");
    Image two = seeder.pushImage("cli/two", "2.0", 1, 100_000, "oci");

    Run run = prefetch(Map.of(), "--mirror", mirror.url(), "cli/one:1.0", "local/cli/two:2.0");

    assertThat(run.status()).as(run.output()).isZero();
    assertThat(run.output()).contains("prefetched 2 of 2 image(s): 5 blobs").doesNotContain("\033[");
    for (Image image : List.of(one, two)) {
      for (String blob : image.blobs().keySet()) {
        assertThat(ImageSeeder.sha256(mirror.blobFile(blob))).isEqualTo(blob);
      }
    }
    upstream.clear();
    for (var blob : one.blobs().entrySet()) {
      assertThat(mirror.fetch("/v2/cli/one/blobs/" + blob.getKey()).complete(blob.getValue().length, blob.getKey()))
          .isTrue();
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isZero();
  }

  @Test
  void aMissingImageMakesTheCommandFailAndSaysWhy() throws Exception {
    Image there = seeder.pushImage("cli/there", "1.0", 1, 50_000, "docker");

    Run run = prefetch(Map.of(), "--mirror", mirror.url(), "cli/missing:1.0", "cli/there:1.0", "quay.io/cli/x:1");

    assertThat(run.status()).as(run.output()).isEqualTo(1);
    assertThat(run.output()).contains("cli/missing:1.0").contains("MANIFEST_UNKNOWN")
        .contains("quay.io/cli/x:1").contains("not mirrored")
        .contains("prefetched 1 of 3 image(s)").contains("2 failed");
    for (String blob : there.blobs().keySet()) {
      assertThat(Files.exists(mirror.blobFile(blob))).isTrue();
    }
  }

  @Test
  void theTokenComesFromTheEnvironmentOrTheCommandLine(Vertx vertx, @TempDir Path cache) throws Exception {
    Image image = seeder.pushImage("cli/secret", "1.0", 1, 50_000, "docker");
    MirrorUnderTest guarded = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "",
        "admin:\n  token: " + TOKEN + "\n");
    try {
      Run refused = prefetch(Map.of(), "--mirror", guarded.url(), "cli/secret:1.0");
      assertThat(refused.status()).isEqualTo(1);
      assertThat(refused.output()).contains("UNAUTHORIZED");

      Run fromEnv = prefetch(Map.of("MIRROR_ADMIN_TOKEN", TOKEN), "--mirror", guarded.url(), "cli/secret:1.0");
      assertThat(fromEnv.status()).as(fromEnv.output()).isZero();
      Run fromFlag = prefetch(Map.of(), "--mirror", guarded.url(), "--token", TOKEN, "cli/secret:1.0");
      assertThat(fromFlag.status()).as(fromFlag.output()).isZero();
      for (String blob : image.blobs().keySet()) {
        assertThat(Files.exists(guarded.blobFile(blob))).isTrue();
      }
    } finally {
      guarded.close();
    }
  }

  @Test
  void aUsageErrorExitsWithTwo() throws Exception {
    Run none = prefetch(Map.of(), "--mirror", mirror.url());
    assertThat(none.status()).isEqualTo(2);
    assertThat(none.output()).contains("usage:");
    Run unknown = prefetch(Map.of(), "--bogus", "cli/one:1.0");
    assertThat(unknown.status()).isEqualTo(2);
    assertThat(unknown.output()).contains("unknown option --bogus");
  }

  /** Runs {@code Main prefetch ARGS} in a JVM of its own, its output not a terminal. */
  private static Run prefetch(Map<String, String> env, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", MirrorProcess.classPath(),
        "io.registrymirror.Main", "prefetch"));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().remove("MIRROR_ADMIN_TOKEN");
    builder.environment().putAll(env);
    Process process = builder.start();
    process.getOutputStream().close();
    byte[] output = process.getInputStream().readAllBytes();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Run(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }
}
