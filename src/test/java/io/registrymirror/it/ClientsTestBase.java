package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Containerd;
import io.registrymirror.testing.Exec;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.Podman;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.TestCertificate;
import io.registrymirror.testing.SharedOrigin;
import io.registrymirror.testing.TokenServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * The setting of the real-client tests ({@link DockerContainerdClientsTest},
 * {@link PodmanSkopeoClientsTest}): real clients pulling through one mirror that serves two
 * registries over https: Docker Hub ({@code docker.io}, the default, behind a token service that
 * wants the mirror's credentials) and {@code registry.example.test} (behind htpasswd Basic
 * auth). dockerd, containerd, podman and skopeo each pull with the configuration a user would
 * write, and every digest they end up with is compared with what was pushed upstream.
 *
 * <p>Every client quietly falls back to the real registry when a mirror fails, so the
 * repositories have random names that exist nowhere else, and each test checks that the test
 * registries served the content, with the mirror's credentials.
 */
@ExtendWith(VertxExtension.class)
abstract class ClientsTestBase {

  static final String HUB = "docker.io";
  static final String PRIVATE = "registry.example.test";
  static final String HUB_USER = "hub-bot";
  static final String HUB_PASSWORD = "pw-hub-Rk41";
  static final String PRIVATE_USER = "tool-puller";
  static final String PRIVATE_PASSWORD = "pw-private-Vy08";
  static final Path SKOPEO = Path.of("/usr/bin/skopeo");

  /** Unique per run, so that no repository here can also exist on the real Docker Hub. */
  static final String SUFFIX = HexFormat.of().formatHex(new SecureRandom().generateSeed(4));

  @TempDir
  static Path files;
  static ReferenceRegistry hubRegistry;
  static ReferenceRegistry privateRegistry;
  static TokenServer tokens;
  static SharedOrigin origin;
  static Forwarder hub;
  static Forwarder registry;
  static TestCertificate certificate;
  static Path caDir;

  /** {@code library/e2edemo-…:1.0} on Docker Hub: an official image, schema2. */
  static Image demo;
  /** {@code e2eacme-…/app:1.0} on Docker Hub: a user's image, OCI. */
  static Image app;
  /** {@code library/e2emulti-…:2.0} on Docker Hub: an OCI index of three platforms. */
  static Index multi;
  /** {@code team/tool-…:2.0} on the second registry, schema2. */
  static Image tool;

  MirrorUnderTest mirror;

  @BeforeAll
  static void startRegistries() throws Exception {
    Required.referenceRegistry();
    hubRegistry = ReferenceRegistry.start();
    ImageSeeder hubSeeder = new ImageSeeder(hubRegistry.url(), 11);
    demo = hubSeeder.pushImage("library/e2edemo-" + SUFFIX, "1.0", 2, 300_000, "docker");
    app = hubSeeder.pushImage("e2eacme-" + SUFFIX + "/app", "1.0", 2, 200_000, "oci");
    multi = hubSeeder.pushIndex("library/e2emulti-" + SUFFIX, "2.0",
        List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64/v8"), Platform.of("linux/s390x")));
    tokens = TokenServer.start("hub.test", "hub-token-issuer");
    tokens.requireCredentials(HUB_USER, HUB_PASSWORD);
    // The mirror sends credentials only to a token realm on the upstream's own origin.
    origin = SharedOrigin.start(tokens.realm());
    hubRegistry.restart(origin.auth(tokens));

    privateRegistry = ReferenceRegistry.start();
    tool = new ImageSeeder(privateRegistry.url(), 12).pushImage("team/tool-" + SUFFIX, "2.0", 3, 150_000, "docker");
    Path htpasswd = Files.writeString(files.resolve("htpasswd"),
        PRIVATE_USER + ":" + BCrypt.hashpw(PRIVATE_PASSWORD, BCrypt.gensalt(5)) + "\n");
    privateRegistry.restart(new ReferenceRegistry.HtpasswdAuth("private registry", htpasswd));

    hub = Forwarder.start(hubRegistry.port());
    origin.registry(hub.port());
    registry = Forwarder.start(privateRegistry.port());
    certificate = TestCertificate.generate(files, "registry-mirror", "ip:127.0.0.1", "dns:localhost");
    // c/image takes a directory of CA files named *.crt, and would read a *.key beside them as a client key.
    caDir = Files.createDirectories(files.resolve("ca"));
    Files.copy(certificate.certPem(), caDir.resolve("mirror.crt"));
  }

  @AfterAll
  static void stopRegistries() {
    for (AutoCloseable closeable : new AutoCloseable[] {hub, registry, origin, tokens, hubRegistry, privateRegistry}) {
      if (closeable != null) {
        try {
          closeable.close();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }
    }
  }

  /**
   * With a tag TTL of zero every tag pull asks upstream, so that a pull while upstream is down is
   * answered from the stale cache, not passed off as a fresh hit.
   */
  @BeforeEach
  void startMirror(Vertx vertx, @TempDir Path cache) {
    hub.clear();
    registry.clear();
    tokens.reset();
    mirror = MirrorUnderTest.startWithConfig(vertx, """
        listen: 127.0.0.1:0
        cache:
          dir: %s
        tls:
          cert: %s
          key: %s
        upstreams:
          %s:
            url: %s
            default: true
            tagTtl: 0s
            username: %s
            password: %s
          %s:
            url: %s
            tagTtl: 0s
            username: %s
            password: %s
        """.formatted(cache, certificate.certPem(), certificate.keyPem(),
        HUB, origin.url(), HUB_USER, HUB_PASSWORD, PRIVATE, registry.url(), PRIVATE_USER, PRIVATE_PASSWORD), cache);
  }

  @AfterEach
  void stopMirror() {
    mirror.close();
  }

  /** The linux/arm64/v8 image of the index. */
  static Image arm64() {
    return multi.children().get(1);
  }

  /**
   * A registries.conf as a user of both registries would write it: Docker Hub mirrored at the
   * mirror's root, the second registry at a path named after it, and no {@code insecure}, so
   * that the mirror's certificate is verified.
   */
  Path registriesConf(Path dir) throws IOException {
    return Files.writeString(dir.resolve("registries.conf"), """
        [[registry]]
        prefix = "%1$s"
        location = "%1$s"
        [[registry.mirror]]
        location = "%3$s"

        [[registry]]
        prefix = "%2$s"
        location = "%2$s"
        [[registry.mirror]]
        location = "%3$s/%2$s"
        """.formatted(HUB, PRIVATE, mirror.hostPort()));
  }

  static void skopeoCopy(Path registriesConf, String reference, Path dir, String... options) {
    // skopeo ignores CONTAINERS_REGISTRIES_CONF; only the option makes it use the mirrors.
    List<String> command = new ArrayList<>(List.of(SKOPEO.toString(),
        "--registries-conf", registriesConf.toString(), "--insecure-policy", "copy", "--retry-times", "0",
        "--src-cert-dir", caDir.toString()));
    command.addAll(List.of(options));
    command.addAll(List.of("docker://" + reference, "dir:" + dir));
    Exec.run(Duration.ofSeconds(120), Map.of(), command);
  }

  /**
   * docker names an image by its config digest and lists the manifest digests it was pulled by
   * (several, when manifests share a config, so membership is what counts), and its layers by
   * the digests of their uncompressed contents, which it checked as it unpacked them.
   */
  static void assertDockerImage(JsonObject inspected, String repoDigest, Image image) {
    assertThat(inspected.getString("Id")).isEqualTo(image.configDigest());
    assertThat(inspected.getJsonArray("RepoDigests").getList()).contains(repoDigest);
    assertThat(inspected.getJsonObject("RootFS").getJsonArray("Layers").getList()).isEqualTo(diffIds(image));
  }

  /** As for docker, with the fully qualified name and the config digest's hex as the Id. */
  static void assertPodmanImage(JsonObject inspected, String name, Image image) {
    assertThat("sha256:" + inspected.getString("Id")).isEqualTo(image.configDigest());
    assertThat(inspected.getJsonArray("RepoDigests").getList()).contains(name + "@" + image.manifestDigest());
    assertThat(inspected.getJsonObject("RootFS").getJsonArray("Layers").getList()).isEqualTo(diffIds(image));
  }

  static void assertContainerdImage(Containerd containerd, String reference, Image image) {
    assertThat(containerd.imageDigest(reference)).isEqualTo(image.manifestDigest());
    assertContainerdContent(containerd, image);
  }

  /** containerd stores each blob under the digest it verified on the way in. */
  static void assertContainerdContent(Containerd containerd, Image image) {
    Set<String> expected = new HashSet<>(image.blobs().keySet());
    expected.add(image.manifestDigest());
    assertThat(containerd.contentDigests()).containsAll(expected);
    assertThat(containerd.content(image.manifestDigest())).isEqualTo(new String(image.manifest(), StandardCharsets.UTF_8));
  }

  /** skopeo's {@code dir:} keeps the manifest as fetched and names each blob file by its digest's hex. */
  static void assertDirLayout(Path dir, Image image) throws IOException {
    assertThat(Files.readAllBytes(dir.resolve("manifest.json"))).isEqualTo(image.manifest());
    for (var blob : image.blobs().entrySet()) {
      Path file = dir.resolve(blob.getKey().substring("sha256:".length()));
      assertThat(ImageSeeder.sha256(file)).isEqualTo(blob.getKey());
      assertThat(Files.readAllBytes(file)).isEqualTo(blob.getValue());
    }
  }

  static List<Object> diffIds(Image image) {
    return new JsonObject(new String(image.blobs().get(image.configDigest()), StandardCharsets.UTF_8))
        .getJsonObject("rootfs").getJsonArray("diff_ids").getList();
  }

  /**
   * The Docker Hub stand-in served the image's manifest and every blob to the mirror, with tokens
   * that the token service issued for the mirror's own user.
   */
  static void assertServedByHub(Image image) {
    assertServed(hub, image);
    assertThat(hub.seen()).filteredOn(s -> s.status() == 200).allSatisfy(
        s -> assertThat(s.headers().get("Authorization")).startsWith("Bearer "));
    assertThat(tokens.requests()).isNotEmpty().allSatisfy(r -> assertThat(r.user()).isEqualTo(HUB_USER));
  }

  /** The second registry served the image to the mirror, which sent its Basic credentials. */
  static void assertServedByRegistry(Image image) {
    assertServed(registry, image);
    String basic = "Basic " + Base64.getEncoder()
        .encodeToString((PRIVATE_USER + ":" + PRIVATE_PASSWORD).getBytes(StandardCharsets.UTF_8));
    assertThat(registry.seen()).filteredOn(s -> s.status() == 200).allSatisfy(
        s -> assertThat(s.headers().get("Authorization")).isEqualTo(basic));
  }

  static void assertServed(Forwarder upstream, Image image) {
    List<String> paths = new ArrayList<>();
    for (Seen seen : upstream.seen()) {
      if (seen.method().equals("GET") && seen.status() == 200) {
        paths.add(seen.uri().split("\\?")[0]);
      }
    }
    String base = "/v2/" + image.repo();
    // The manifest by tag when the mirror resolved the tag itself, by digest when a client named it.
    List<String> manifest = Stream.of(image.tag(), image.manifestDigest()).filter(Objects::nonNull)
        .map(reference -> base + "/manifests/" + reference).toList();
    assertThat(paths).as("GETs answered by the upstream").containsAnyElementsOf(manifest)
        .containsAll(image.blobs().keySet().stream().map(digest -> base + "/blobs/" + digest).toList());
  }
}
