package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.SharedOrigin;
import io.registrymirror.testing.TokenServer;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An upstream password in a mounted Kubernetes Secret is rotated in place: the kubelet writes the
 * new content to a new directory and swaps the {@code ..data} symlink, so the path the mirror
 * was given never changes. The mirror picks the new password up without a restart, drops the
 * tokens the old one got (the token service has revoked it), and keeps the old password when the
 * new file is broken, saying why in the log without ever logging a password.
 */
@Timeout(120)
class PasswordRotationTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String USER = "mirror-bot";
  private static final String OLD = "pw-old-Vb31-secret";
  private static final String NEW = "pw-new-Hq58-secret";
  private static final Duration NOTICED = Duration.ofSeconds(10);

  private static final AtomicInteger versions = new AtomicInteger();
  private static TokenServer tokens;
  private static SharedOrigin origin;
  private static Path secret;
  private static Image app;
  private static Image other;

  @BeforeAll
  static void seedAndRequireCredentials() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    app = seeder.pushImage("private/app", "1.0", 2, 50_000, "docker");
    other = seeder.pushImage("private/other", "1.0", 1, 10_000, "docker");
    tokens = TokenServer.start("private-registry", "token-issuer");
    origin = SharedOrigin.start(tokens.realm());
    registry.restart(origin.auth(tokens));
    secret = Files.createTempDirectory("secret-volume-");
  }

  @AfterAll
  static void stopTokens() throws IOException {
    if (tokens != null) {
      tokens.close();
      origin.close();
      tokens = null;
    }
    try (var files = Files.walk(secret)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** Each test starts from the old password, in the file and at the token service. */
  @Override
  protected String upstreamYaml() {
    try {
      tokens.reset();
      tokens.requireCredentials(USER, OLD);
      mount(OLD);
      Path file = secret.resolve("password");
      if (!Files.isSymbolicLink(file)) {
        Files.createSymbolicLink(file, Path.of("..data/password"));
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return "username: " + USER + "\npasswordFile: " + secret.resolve("password") + "\npasswordFileCheck: 100ms";
  }

  @Override
  protected String upstreamUrl() {
    origin.registry(upstream.port());
    return origin.url();
  }

  @Test
  void aRotatedPasswordIsUsedAndTheOldTokensAreDropped() throws Exception {
    try (LogCapture logs = LogCapture.start()) {
      assertPulls(app.repo() + "/manifests/1.0", app.manifest());
      int before = tokens.requests().size();
      assertThat(tokens.requests()).isNotEmpty().allSatisfy(r -> assertThat(r.user()).isEqualTo(USER));

      // The old password is revoked, as after a leak; the Secret gets the new one.
      tokens.requireCredentials(USER, NEW);
      mount(NEW);
      MirrorUnderTest.eventually(NOTICED, () -> logged(logs, "upstream.password.changed"),
          "the mirror to notice the new password");

      // The token for private/app that the old password got is gone: the blob needs a new one.
      String blob = app.layerDigests().get(0);
      assertPulls(app.repo() + "/blobs/" + blob, app.blobs().get(blob));
      List<TokenServer.Request> after = tokens.requests().subList(before, tokens.requests().size());
      assertThat(after).isNotEmpty().allSatisfy(r -> assertThat(r.user()).isEqualTo(USER));
      assertThat(logs.lines()).noneMatch(line -> line.contains(OLD) || line.contains(NEW));
    }
  }

  @Test
  void aBrokenNewFileKeepsTheOldPassword() throws Exception {
    try (LogCapture logs = LogCapture.start()) {
      mount("");
      MirrorUnderTest.eventually(NOTICED, () -> logs.lines().stream()
          .anyMatch(l -> l.contains("upstream.password.unchanged") && l.contains("it is empty")),
          "the mirror to refuse an empty password file");
      // The Secret's data directory is removed without a new one: the file is gone.
      Path current = Files.readSymbolicLink(secret.resolve("..data"));
      Files.delete(secret.resolve(current).resolve("password"));
      MirrorUnderTest.eventually(NOTICED, () -> logs.lines().stream()
          .anyMatch(l -> l.contains("upstream.password.unchanged") && l.contains("it does not exist")),
          "the mirror to refuse a missing password file");

      // A repository not pulled before needs a new token: the old password still gets it.
      assertPulls(other.repo() + "/manifests/1.0", other.manifest());
      assertThat(tokens.requests()).isNotEmpty().allSatisfy(r -> assertThat(r.user()).isEqualTo(USER));
      assertThat(logs.lines()).noneMatch(line -> line.contains(OLD));
    }
  }

  private void assertPulls(String path, byte[] expected) {
    HttpResponse<byte[]> got = mirror.get("/v2/" + path, "Accept", DOCKER);
    assertThat(got.statusCode()).as(path).isEqualTo(200);
    assertThat(got.body()).isEqualTo(expected);
  }

  private static boolean logged(LogCapture logs, String event) {
    return logs.lines().stream().anyMatch(line -> line.contains(event));
  }

  /** What the kubelet does: the new content in a new directory, then {@code ..data} swapped to it at once. */
  private static void mount(String password) throws IOException {
    Path version = secret.resolve("..version-" + versions.incrementAndGet());
    Files.createDirectory(version);
    Files.writeString(version.resolve("password"), password.isEmpty() ? "" : password + "\n");
    Path next = secret.resolve("..data_tmp");
    Files.deleteIfExists(next);
    Files.createSymbolicLink(next, version.getFileName());
    Files.move(next, secret.resolve("..data"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
