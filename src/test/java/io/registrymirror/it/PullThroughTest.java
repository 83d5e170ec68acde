package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Pulls through the mirror from the real reference registry, counting what reaches it: a cold
 * pull returns upstream's exact bytes, a warm one asks upstream for no content, and the cache
 * outlives the mirror process.
 */
class PullThroughTest extends MirrorTestBase {

  private static final String DOCKER = "application/vnd.docker.distribution.manifest.v2+json";
  private static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";

  private static Image image;
  private static Image ociImage;
  private static Index index;


  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    image = seeder.pushImage("team/app", "1.0", 3, 300_000, "docker");
    ociImage = seeder.pushImage("team/oci", "2.0", 2, 100_000, "oci");
    index = seeder.pushIndex("team/multi", "latest",
        List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64")));
  }

  @Test
  void coldPullReturnsUpstreamsExactBytesAndDigests() {
    HttpResponse<byte[]> head = mirror.head("/v2/team/app/manifests/1.0", "Accept", DOCKER);
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.headers().firstValue("Docker-Content-Digest")).hasValue(image.manifestDigest());
    assertThat(head.headers().firstValue("Content-Type")).hasValue(DOCKER);
    assertThat(head.headers().firstValueAsLong("Content-Length")).hasValue(image.manifest().length);

    HttpResponse<byte[]> manifest = mirror.get("/v2/team/app/manifests/" + image.manifestDigest(),
        "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    assertThat(manifest.headers().firstValue("Docker-Content-Digest")).hasValue(image.manifestDigest());

    for (var blob : image.blobs().entrySet()) {
      HttpResponse<byte[]> got = mirror.get("/v2/team/app/blobs/" + blob.getKey());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(blob.getValue());
      assertThat(ImageSeeder.sha256(got.body())).isEqualTo(blob.getKey());
      assertThat(got.headers().firstValue("Docker-Content-Digest")).hasValue(blob.getKey());
      assertThat(got.headers().firstValueAsLong("Content-Length")).hasValue(blob.getValue().length);
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(image.blobs().size());
  }

  @Test
  void warmPullAsksUpstreamForNoContent() {
    pullByTag(image, DOCKER);
    upstream.clear();

    pullByTag(image, DOCKER);
    // Within the tag TTL, not even the tag is revalidated.
    assertThat(upstream.seen()).isEmpty();

    // A pull by digest, from another repository that shares the content, is all cache too.
    for (String blob : image.blobs().keySet()) {
      assertThat(mirror.get("/v2/other/repo/blobs/" + blob).statusCode()).isEqualTo(200);
      assertThat(mirror.head("/v2/other/repo/blobs/" + blob).statusCode()).isEqualTo(200);
    }
    assertThat(mirror.get("/v2/team/app/manifests/" + image.manifestDigest()).body())
        .isEqualTo(image.manifest());
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void ociImageAndMultiPlatformIndexKeepTheirTypes() {
    pullByTag(ociImage, "application/vnd.oci.image.manifest.v1+json");

    HttpResponse<byte[]> idx = mirror.get("/v2/team/multi/manifests/latest", "Accept", OCI_INDEX,
        "Accept", "application/vnd.oci.image.manifest.v1+json");
    assertThat(idx.statusCode()).isEqualTo(200);
    assertThat(idx.body()).isEqualTo(index.body());
    assertThat(idx.headers().firstValue("Content-Type")).hasValue(OCI_INDEX);
    assertThat(idx.headers().firstValue("Docker-Content-Digest")).hasValue(index.digest());
    for (Image child : index.children()) {
      HttpResponse<byte[]> m = mirror.get("/v2/team/multi/manifests/" + child.manifestDigest(),
          "Accept", child.mediaType() + ", */*");
      assertThat(m.body()).isEqualTo(child.manifest());
      assertThat(m.headers().firstValue("Content-Type")).hasValue(child.mediaType());
    }
  }

  @Test
  void headOfAnUncachedBlobStartsNoFetch() {
    String layer = image.layerDigests().get(0);
    HttpResponse<byte[]> head = mirror.head("/v2/team/app/blobs/" + layer);
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.headers().firstValueAsLong("Content-Length")).hasValue(image.blobs().get(layer).length);
    assertThat(upstream.count("GET", ".*/blobs/.*")).isZero();
    assertThat(mirror.filesUnder("blobs")).isZero();
  }

  @Test
  void neverAppliesContentEncoding() {
    String layer = image.layerDigests().get(0);
    HttpResponse<byte[]> got = mirror.get("/v2/team/app/blobs/" + layer, "Accept-Encoding", "gzip");
    assertThat(got.headers().firstValue("Content-Encoding")).isEmpty();
    assertThat(got.body()).isEqualTo(image.blobs().get(layer));
    HttpResponse<byte[]> m = mirror.get("/v2/team/app/manifests/1.0", "Accept-Encoding", "gzip",
        "Accept", DOCKER);
    assertThat(m.headers().firstValue("Content-Encoding")).isEmpty();
    assertThat(m.body()).isEqualTo(image.manifest());
  }

  @Test
  void aCachedBlobRemovedByHandIsFetchedAgain() throws Exception {
    String layer = image.layerDigests().get(0);
    String path = "/v2/team/app/blobs/" + layer;
    assertThat(mirror.get(path).body()).isEqualTo(image.blobs().get(layer));
    // The client has its last byte once the digest is checked; the file is renamed into place after.
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached");
    Files.delete(mirror.blobFile(layer));

    // The file is found missing before any header goes out, and fetched again for this client.
    HttpResponse<byte[]> again = mirror.get(path);
    assertThat(again.statusCode()).isEqualTo(200);
    assertThat(again.body()).isEqualTo(image.blobs().get(layer));
    assertThat(upstream.count("GET", ".*/blobs/" + layer)).isEqualTo(2);
    eventually(Duration.ofSeconds(10), () -> Files.exists(mirror.blobFile(layer)), "the blob to be cached again");
    assertThat(mirror.head(path).statusCode()).isEqualTo(200);
    assertThat(upstream.count("HEAD", ".*/blobs/" + layer)).isZero();
  }

  @Test
  void restartKeepsTheCacheAndServesItWithUpstreamGone(Vertx vertx) throws Exception {
    pullByTag(image, DOCKER);
    Path cache = mirror.cacheDir();
    mirror.close();
    upstream.close();
    // Nothing listens where the upstream was: the restarted mirror has only its cache.
    mirror = MirrorUnderTest.start(vertx, upstream.url(), cache);
    upstream = Forwarder.start(registry.port());

    HttpResponse<byte[]> manifest = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
    assertThat(manifest.statusCode()).isEqualTo(200);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (var blob : image.blobs().entrySet()) {
      assertThat(mirror.get("/v2/team/app/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
    }
  }

  /** What dockerd and containerd do: HEAD the tag, then GET the manifest and blobs by digest. */
  private void pullByTag(Image img, String accept) {
    String base = "/v2/" + img.repo();
    HttpResponse<byte[]> head = mirror.head(base + "/manifests/" + img.tag(), "Accept", accept);
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.headers().firstValue("Docker-Content-Digest")).hasValue(img.manifestDigest());
    HttpResponse<byte[]> m = mirror.get(base + "/manifests/" + img.manifestDigest(), "Accept", accept);
    assertThat(m.body()).isEqualTo(img.manifest());
    for (var blob : img.blobs().entrySet()) {
      HttpResponse<byte[]> b = mirror.get(base + "/blobs/" + blob.getKey());
      assertThat(b.statusCode()).isEqualTo(200);
      assertThat(b.body()).isEqualTo(blob.getValue());
    }
  }
}
