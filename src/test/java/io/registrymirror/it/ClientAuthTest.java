package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Containerd;
import io.registrymirror.testing.Dockerd;
import io.registrymirror.testing.Exec;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.TestCertificate;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * Real clients pulling Docker Hub images through a mirror that lets only its own users pull
 * ({@code auth.htpasswd}), over https as in {@link ClientsTestBase}: which credentials each client
 * sends to a mirror, how a user gets it to send the mirror's, and what it does when the mirror
 * refuses it.
 *
 * <p>The upstream is anonymous, so a client's credentials have no business there: it must see
 * none, and whatever it served went through the mirror. The clients run offline, so their
 * fallback to the real Docker Hub shows up as a failed connection, never as a pull from it.
 */
@ExtendWith(VertxExtension.class)
@Timeout(180)
class ClientAuthTest {

  private static final String HUB = "docker.io";
  private static final String USER = "ci-puller";
  private static final String PASSWORD = "pw-mirror-Qe72";
  private static final String HUB_FALLBACK = "registry-1.docker.io";

  /** Unique per run, so that no repository here can also exist on the real Docker Hub. */
  private static final String SUFFIX = HexFormat.of().formatHex(new SecureRandom().generateSeed(4));

  @TempDir
  static Path files;
  private static ReferenceRegistry origin;
  private static Forwarder upstream;
  private static TestCertificate certificate;
  private static Path htpasswd;
  /** {@code library/e2eauth-…:1.0}: an official image, schema2. */
  private static Image image;

  private MirrorUnderTest mirror;

  @BeforeAll
  static void startRegistry() throws Exception {
    Required.referenceRegistry();
    origin = ReferenceRegistry.start();
    image = new ImageSeeder(origin.url(), 21).pushImage("library/e2eauth-" + SUFFIX, "1.0", 2, 100_000, "docker");
    upstream = Forwarder.start(origin.port());
    certificate = TestCertificate.generate(files, "registry-mirror", "ip:127.0.0.1", "dns:localhost");
    // A low bcrypt cost: the mirror checks a password once per pull, which needs no slowing down here.
    htpasswd = Files.writeString(files.resolve("htpasswd"), USER + ":" + BCrypt.hashpw(PASSWORD, BCrypt.gensalt(5)) + "\n");
  }

  @AfterAll
  static void stopRegistry() {
    if (upstream != null) {
      upstream.close();
    }
    if (origin != null) {
      origin.close();
    }
  }

  @BeforeEach
  void startMirror(Vertx vertx, @TempDir Path cache) {
    upstream.clear();
    mirror = MirrorUnderTest.start(vertx, HUB, upstream.url(), cache, "", """
        tls:
          cert: %s
          key: %s
        auth:
          htpasswd: %s
        """.formatted(certificate.certPem(), certificate.keyPem(), htpasswd));
  }

  @AfterEach
  void stopMirror() {
    mirror.close();
  }

  /**
   * dockerd has no credentials of its own for a mirror: it sends the ones the docker CLI passes
   * with the pull, which are those for the image's registry, Docker Hub, wherever the pull goes.
   * A {@code docker login} to the mirror succeeds but is used only for images named after the
   * mirror; without the mirror's user in Docker Hub's entry, dockerd turns from the mirror's 401
   * to Docker Hub.
   */
  @Test
  void dockerSendsTheMirrorItsDockerHubCredentials() throws Exception {
    Required.dockerd();
    String name = "e2eauth-" + SUFFIX;
    try (Dockerd docker = Dockerd.start(mirror.hostPort(), certificate.certPem())) {
      // With no credentials to answer the mirror's challenge, dockerd says so and moves on. docker
      // asks a mirror for official images under library/, the name Docker Hub knows them by; the
      // log's message field escapes its quotes.
      String noCredentials = "Head \\\"https://" + mirror.hostPort() + "/v2/library/" + name
          + "/manifests/1.0\\\": no basic auth credentials";
      assertRefusedThenDockerHubTried(docker, name, noCredentials);

      // The daemon checks a login with the registry it names: the mirror accepts this user...
      assertThat(docker.docker("login", "--username", USER, "--password", PASSWORD, mirror.hostPort()))
          .contains("Login Succeeded");
      // ...yet a pull of a Docker Hub image does not send it.
      assertRefusedThenDockerHubTried(docker, name, noCredentials);

      // Someone's own Docker Hub login is sent to the mirror, whose 401 is then the error.
      docker.storeDockerHubCredentials("someone", "their-docker-hub-password");
      assertRefusedThenDockerHubTried(docker, name, "unauthorized: authentication required");

      // The mirror's user where Docker Hub's credentials go: the pull goes through the mirror.
      docker.storeDockerHubCredentials(USER, PASSWORD);
      docker.docker("pull", name + ":1.0");
      JsonObject inspected = docker.inspect(name + ":1.0");
      assertThat(inspected.getString("Id")).isEqualTo(image.configDigest());
      assertThat(inspected.getJsonArray("RepoDigests").getList()).contains(name + "@" + image.manifestDigest());

      // An image named after the mirror is the mirror's own: the login to it is what goes there.
      docker.storeDockerHubCredentials("someone", "their-docker-hub-password");
      String byMirror = mirror.hostPort() + "/library/" + name;
      docker.docker("pull", byMirror + ":1.0");
      assertThat(docker.inspect(byMirror + ":1.0").getJsonArray("RepoDigests").getList())
          .contains(byMirror + "@" + image.manifestDigest());
    }
    assertServedThroughTheMirror();
  }

  /**
   * containerd sends what a mirror's host entry in {@code hosts.toml} has in its {@code header}
   * table. Without it the mirror's 401 is what the pull fails with, after containerd has tried
   * the {@code server} too.
   */
  @Test
  void containerdSendsTheAuthorizationHeaderOfHostsToml() throws Exception {
    Required.containerd();
    String reference = HUB + "/" + image.repo() + ":1.0";
    try (Containerd containerd = Containerd.start()) {
      containerd.mirror(HUB, "https://" + HUB_FALLBACK, mirror.hostPort(), certificate.certPem());
      Exec.Result refused = containerd.attemptPull(reference);
      assertThat(refused.exitCode()).as("ctr's exit status").isNotZero();
      assertThat(refused.stderr())
          .contains("pulling from host " + mirror.hostPort() + " failed with status code")
          .contains("401 Unauthorized")
          .containsPattern("trying next host.*host=" + Pattern.quote(HUB_FALLBACK));
      assertThat(upstream.seen()).as("requests that reached the upstream").isEmpty();

      containerd.mirror(HUB, "https://" + HUB_FALLBACK, mirror.hostPort(), certificate.certPem(),
          Map.of("Authorization", "Basic " + base64(USER + ":" + PASSWORD)));
      containerd.pull(reference);
      assertThat(containerd.imageDigest(reference)).isEqualTo(image.manifestDigest());
      assertThat(containerd.contentDigests()).containsAll(image.blobs().keySet());
    }
    assertServedThroughTheMirror();
  }

  /**
   * A pull that the mirror refused with {@code mirrorError}, after which dockerd went on to
   * Docker Hub, where it failed to connect; nothing reached the upstream.
   */
  private void assertRefusedThenDockerHubTried(Dockerd docker, String name, String mirrorError) throws Exception {
    String refusal = "Attempting next endpoint for pull after error: " + mirrorError + "\"";
    long before = occurrences(docker.log(), refusal);
    Exec.Result pull = docker.attempt("pull", name + ":1.0");
    assertThat(pull.exitCode()).as("docker pull's exit status").isNotZero();
    assertThat(pull.stderr()).as("why the last endpoint, Docker Hub, failed").contains(HUB_FALLBACK);
    String log = docker.log();
    assertThat(occurrences(log, refusal)).as("mirror refusals in the dockerd log, among:\n%s",
        log.lines().filter(line -> line.contains("Attempting next endpoint")).collect(Collectors.joining("\n")))
        .isEqualTo(before + 1);
    assertThat(upstream.seen()).as("requests that reached the upstream").isEmpty();
  }

  private static long occurrences(String text, String part) {
    return text.split(Pattern.quote(part), -1).length - 1L;
  }

  /**
   * The upstream served the manifest and every blob, once each, to the mirror, which sent no
   * credentials: the client's stay with the mirror.
   */
  private static void assertServedThroughTheMirror() {
    String base = "/v2/" + image.repo();
    assertThat(upstream.count("GET", Pattern.quote(base + "/manifests/") + ".*")).isPositive();
    for (String digest : image.blobs().keySet()) {
      assertThat(upstream.count("GET", Pattern.quote(base + "/blobs/" + digest))).as("GETs of " + digest).isEqualTo(1);
    }
    assertThat(upstream.seen()).allSatisfy(seen -> assertThat(seen.headers().get("Authorization")).isNull());
  }

  private static String base64(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }
}
