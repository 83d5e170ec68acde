package io.registrymirror.testing;

import static io.registrymirror.testing.Forwarder.matching;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Proves the test harness: a real registry, seeded over HTTP, reached through the recording, faulting forwarder. */
@Timeout(120)
class HarnessTest {

  private static final String BLOBS = ".*/blobs/.*";

  private static ReferenceRegistry registry;
  private static ImageSeeder seeder;
  private static Forwarder forwarder;
  private static Image image;
  private static Index index;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeAll
  static void startHarness() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
    seeder = new ImageSeeder(registry.url());
    image = seeder.pushImage("harness/app", "v1", 2, 256 * 1024, "docker");
    index = seeder.pushIndex("harness/multi", "latest",
        List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64/v8")));
    forwarder = Forwarder.start(registry.port());
  }

  @AfterAll
  static void stopHarness() {
    if (forwarder != null) {
      forwarder.close();
    }
    if (registry != null) {
      registry.close();
    }
  }

  @BeforeEach
  void resetForwarder() {
    forwarder.clear();
    forwarder.clearFaults();
  }

  @Test
  void manifestAndBlobPassThroughUnchanged() throws Exception {
    HttpResponse<byte[]> manifest = get("/v2/harness/app/manifests/v1", ImageSeeder.DOCKER_MANIFEST);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    assertThat(manifest.headers().firstValue("Docker-Content-Digest")).hasValue(image.manifestDigest());
    assertThat(manifest.headers().firstValue("Content-Type")).hasValue(ImageSeeder.DOCKER_MANIFEST);

    String layer = image.layerDigests().get(1);
    HttpResponse<byte[]> blob = get("/v2/harness/app/blobs/" + layer, "*/*");
    assertThat(blob.statusCode()).isEqualTo(200);
    assertThat(blob.body()).isEqualTo(image.blobs().get(layer));
    assertThat(ImageSeeder.sha256(blob.body())).isEqualTo(layer);

    HttpResponse<Void> head = http.send(request("/v2/harness/app/blobs/" + layer)
        .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), BodyHandlers.discarding());
    assertThat(head.headers().firstValueAsLong("Content-Length")).hasValue(image.blobs().get(layer).length);

    assertThat(forwarder.count("GET", BLOBS)).isEqualTo(1);
    assertThat(forwarder.count("HEAD", BLOBS)).isEqualTo(1);
    assertThat(forwarder.count("GET", ".*/manifests/v1")).isEqualTo(1);
    assertThat(forwarder.seen().get(0).headers().get("Accept")).isEqualTo(ImageSeeder.DOCKER_MANIFEST);
  }

  @Test
  void indexAndItsChildrenPassThrough() throws Exception {
    HttpResponse<byte[]> response = get("/v2/harness/multi/manifests/latest", ImageSeeder.OCI_INDEX);
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body()).isEqualTo(index.body());
    assertThat(response.headers().firstValue("Docker-Content-Digest")).hasValue(index.digest());

    Image arm = index.children().get(1);
    String manifestPath = "/v2/harness/multi/manifests/" + arm.manifestDigest();
    assertThat(get(manifestPath, ImageSeeder.OCI_MANIFEST).body()).isEqualTo(arm.manifest());
    byte[] config = get("/v2/harness/multi/blobs/" + arm.configDigest(), "*/*").body();
    assertThat(new String(config, StandardCharsets.UTF_8))
        .contains("\"architecture\":\"arm64\"", "\"variant\":\"v8\"");
  }

  @Test
  void cutAfterTruncatesOnlyTheFirstMatchingResponse() throws Exception {
    String layer = image.layerDigests().get(0);
    int size = image.blobs().get(layer).length;
    forwarder.fault(matching("GET", BLOBS), Fault.cutAfter(1000), 1);

    HttpResponse<InputStream> cut = http.send(request("/v2/harness/app/blobs/" + layer).build(),
        BodyHandlers.ofInputStream());
    assertThat(cut.headers().firstValueAsLong("Content-Length")).hasValue(size);
    AtomicLong received = new AtomicLong();
    try (InputStream in = cut.body()) {
      assertThatThrownBy(() -> {
        byte[] buffer = new byte[8192];
        for (int n; (n = in.read(buffer)) >= 0; ) {
          received.addAndGet(n);
        }
      }).isInstanceOf(IOException.class);
    }
    assertThat(received).hasValue(1000);

    assertThat(get("/v2/harness/app/blobs/" + layer, "*/*").body()).isEqualTo(image.blobs().get(layer));
  }

  @Test
  void flipByteCorruptsExactlyOneByte() throws Exception {
    String layer = image.layerDigests().get(0);
    byte[] original = image.blobs().get(layer);
    forwarder.fault(matching("GET", BLOBS), Fault.flipByte(70_000));

    byte[] flipped = get("/v2/harness/app/blobs/" + layer, "*/*").body();

    assertThat(flipped).hasSameSizeAs(original);
    assertThat(ImageSeeder.sha256(flipped)).isNotEqualTo(layer);
    flipped[70_000] ^= (byte) 0xFF;
    assertThat(flipped).isEqualTo(original);
  }

  @Test
  void statusFaultAnswersWithoutTheUpstream() throws Exception {
    String error = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}";
    forwarder.fault(matching("GET", ".*/manifests/.*"), Fault.status(429, error, Map.of("Retry-After", "1")), 1);

    HttpResponse<byte[]> limited = get("/v2/harness/app/manifests/v1", ImageSeeder.DOCKER_MANIFEST);
    assertThat(limited.statusCode()).isEqualTo(429);
    assertThat(new String(limited.body(), StandardCharsets.UTF_8)).isEqualTo(error);
    assertThat(limited.headers().firstValue("Retry-After")).hasValue("1");

    assertThat(get("/v2/harness/app/manifests/v1", ImageSeeder.DOCKER_MANIFEST).statusCode()).isEqualTo(200);
    assertThat(forwarder.seen()).extracting(Forwarder.Seen::status).containsExactly(429, 200);
  }

  @Test
  void largeBlobStreamsThroughAndSurvivesARestart(@TempDir Path dir) throws Exception {
    Path file = ImageSeeder.randomFile(dir, 64L << 20, 7);
    String digest = seeder.pushBlob("harness/big", file);

    registry.restart();

    HttpResponse<Path> download = http.send(request("/v2/harness/big/blobs/" + digest).build(),
        BodyHandlers.ofFile(dir.resolve("download")));
    assertThat(download.statusCode()).isEqualTo(200);
    assertThat(ImageSeeder.sha256(download.body())).isEqualTo(digest);
  }

  private HttpResponse<byte[]> get(String path, String accept) throws IOException, InterruptedException {
    return http.send(request(path).header("Accept", accept).build(), BodyHandlers.ofByteArray());
  }

  private static HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(URI.create(forwarder.url() + path));
  }
}
