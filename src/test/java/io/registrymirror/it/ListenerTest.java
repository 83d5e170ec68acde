package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.TestCertificate;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * The listener as Docker and containerd meet it outside {@code insecure-registries}: https with
 * the configured PEM certificate, and, when an htpasswd file is configured, Basic authentication
 * of every registry request, the version check included, while health and metrics stay open.
 */
@Timeout(120)
class ListenerTest extends MirrorTestBase {

  private static final String USER = "ci-runner";
  private static final String PASSWORD = "pw-client-Hq7";

  @TempDir
  static Path files;
  private static TestCertificate certificate;
  private static Path htpasswd;
  private static Image image;

  private MirrorUnderTest secured;
  private HttpClient https;

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/secure", "1.0", 2, 300_000, "docker");
    certificate = TestCertificate.generate(files, "registry-mirror test", "ip:127.0.0.1", "dns:localhost");
    htpasswd = files.resolve("htpasswd");
    Files.writeString(htpasswd, "# pullers\n" + USER + ":" + BCrypt.hashpw(PASSWORD, BCrypt.gensalt(6)) + "\n"
        + "other:" + BCrypt.hashpw("something-else", BCrypt.gensalt(6)) + "\n");
  }

  @BeforeEach
  void startSecured(Vertx vertx, @TempDir Path cache) throws Exception {
    secured = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "", """
        tls:
          cert: %s
          key: %s
        auth:
          htpasswd: %s
        """.formatted(certificate.certPem(), certificate.keyPem(), htpasswd));
    https = HttpClient.newBuilder().sslContext(certificate.trustingContext())
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

  @AfterEach
  void stopSecured() {
    secured.close();
  }

  @Test
  void versionCheckChallengesUntilTheRightCredentials() throws Exception {
    for (String authorization : new String[] {null, basic(USER, "wrong-password"), basic("nobody", PASSWORD),
        "Basic not-base64!", "Bearer " + PASSWORD}) {
      HttpResponse<String> answer = get("/v2/", authorization);
      assertThat(answer.statusCode()).as(String.valueOf(authorization)).isEqualTo(401);
      assertThat(answer.headers().firstValue("WWW-Authenticate")).hasValue("Basic realm=\"registry-mirror\"");
      assertThat(answer.headers().firstValue("Docker-Distribution-Api-Version")).hasValue("registry/2.0");
      assertThat(new JsonObject(answer.body()).getJsonArray("errors").getJsonObject(0).getString("code"))
          .isEqualTo("UNAUTHORIZED");
    }
    assertThat(get("/v2/", basic(USER, PASSWORD)).statusCode()).isEqualTo(200);
    // Nothing reached upstream for a client that did not authenticate.
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void anAuthenticatedClientPullsOverTls() throws Exception {
    String base = "/v2/team/secure";
    assertThat(get(base + "/manifests/" + image.manifestDigest(), null).statusCode()).isEqualTo(401);
    assertThat(get(base + "/blobs/" + image.configDigest(), null).statusCode()).isEqualTo(401);
    assertThat(upstream.seen()).isEmpty();

    HttpResponse<byte[]> manifest = https.send(request(base + "/manifests/" + image.manifestDigest(),
        basic(USER, PASSWORD)).header("Accept", image.mediaType()).build(), BodyHandlers.ofByteArray());
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (var blob : image.blobs().entrySet()) {
      HttpResponse<byte[]> got = https.send(request(base + "/blobs/" + blob.getKey(), basic(USER, PASSWORD)).build(),
          BodyHandlers.ofByteArray());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(blob.getValue());
    }
  }

  @Test
  void cachedBlobsComeWholeAndInRangesOverTls() throws Exception {
    String layer = image.layerDigests().get(0);
    byte[] content = image.blobs().get(layer);
    String path = "/v2/team/secure/blobs/" + layer;
    assertThat(https.send(request(path, basic(USER, PASSWORD)).build(), BodyHandlers.ofByteArray()).body())
        .isEqualTo(content);
    // The file is in place a moment before its fill is over: until then a request joins the fill.
    eventually(Duration.ofSeconds(10), () -> hit(path), "the blob to be served from the cache");

    // From the cache: TLS cannot take sendFile's path, so the file is read in chunks off the loop.
    HttpResponse<byte[]> whole = https.send(request(path, basic(USER, PASSWORD)).build(), BodyHandlers.ofByteArray());
    assertThat(whole.statusCode()).isEqualTo(200);
    assertThat(whole.headers().firstValue("X-Mirror-Cache")).hasValue("hit");
    assertThat(whole.headers().firstValueAsLong("Content-Length")).hasValue(content.length);
    assertThat(whole.body()).isEqualTo(content);
    HttpResponse<byte[]> part = https.send(request(path, basic(USER, PASSWORD))
        .header("Range", "bytes=1000-270999").build(), BodyHandlers.ofByteArray());
    assertThat(part.statusCode()).isEqualTo(206);
    assertThat(part.body()).isEqualTo(Arrays.copyOfRange(content, 1000, 271000));
    HttpResponse<byte[]> tail = https.send(request(path, basic(USER, PASSWORD))
        .header("Range", "bytes=-10").build(), BodyHandlers.ofByteArray());
    assertThat(tail.body()).isEqualTo(Arrays.copyOfRange(content, content.length - 10, content.length));
    assertThat(upstream.count("GET", ".*/blobs/" + layer)).isEqualTo(1);
  }

  @Test
  void healthAndMetricsNeedNoCredentials() throws Exception {
    assertThat(get("/healthz", null).statusCode()).isEqualTo(200);
    assertThat(get("/readyz", null).statusCode()).isEqualTo(200);
    assertThat(get("/metrics", null).statusCode()).isEqualTo(200);
  }

  @Test
  void plainHttpIsNotServedOnTheTlsPort() {
    HttpClient plain = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    assertThatThrownBy(() -> plain.send(HttpRequest.newBuilder(URI.create("http://" + secured.hostPort() + "/v2/"))
        .timeout(Duration.ofSeconds(10)).build(), BodyHandlers.ofString()))
        .isInstanceOf(IOException.class);
  }

  @Test
  void skopeoVerifiesTheCertificateAndLogsIn(@TempDir Path work) throws Exception {
    Path skopeo = Path.of("/usr/bin/skopeo");
    Required.skopeo();
    // skopeo's --src-cert-dir takes CA certificates as *.crt files in a directory.
    Path certs = Files.createDirectories(work.resolve("certs"));
    Files.copy(certificate.certPem(), certs.resolve("mirror.crt"));
    Path out = work.resolve("image");
    Path log = work.resolve("skopeo.log");
    Process p = new ProcessBuilder(skopeo.toString(), "--insecure-policy", "copy", "--retry-times", "0",
        "--src-cert-dir", certs.toString(), "--src-creds", USER + ":" + PASSWORD,
        "docker://" + secured.hostPort() + "/team/secure:1.0", "dir:" + out)
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("skopeo finished").isTrue();
    assertThat(p.exitValue()).as("skopeo exit status; output:%n%s", Files.readString(log)).isZero();
    assertThat(Files.readAllBytes(out.resolve("manifest.json"))).isEqualTo(image.manifest());
    for (String digest : image.blobs().keySet()) {
      assertThat(ImageSeeder.sha256(out.resolve(digest.substring("sha256:".length())))).isEqualTo(digest);
    }
  }

  private HttpResponse<String> get(String path, String authorization) throws Exception {
    return https.send(request(path, authorization).build(), BodyHandlers.ofString());
  }

  private HttpRequest.Builder request(String path, String authorization) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("https://" + secured.hostPort() + path))
        .timeout(Duration.ofSeconds(30));
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    return b;
  }

  private static String basic(String user, String password) {
    return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  /** Whether a GET of {@code path} is answered from the cache. */
  private boolean hit(String path) {
    try {
      return https.send(request(path, basic(USER, PASSWORD)).build(), BodyHandlers.discarding())
          .headers().firstValue("X-Mirror-Cache").orElse("").equals("hit");
    } catch (IOException | InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }
}
