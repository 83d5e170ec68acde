package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.S3Server;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shared object storage tier against a real S3 API server (S3Proxy) and the reference
 * registry: what one mirror fetched is written through to the bucket, and a mirror with an empty
 * cache (a new or replaced replica) serves it from there without asking upstream; a wrong copy in
 * the bucket is never served, and goes.
 */
@ExtendWith(VertxExtension.class)
class S3TierTest {

  private static final AtomicInteger BUCKETS = new AtomicInteger();

  private static ReferenceRegistry registry;
  private static S3Server s3;
  private static Path s3Dir;
  private static Image image;

  private Forwarder upstream;
  private String bucket;

  @BeforeAll
  static void start() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
    s3Dir = Files.createTempDirectory("s3proxy-");
    s3 = S3Server.start(s3Dir);
    image = new ImageSeeder(registry.url()).pushImage("team/warm", "1.0", 2, 3 * 1024 * 1024, "docker");
  }

  @AfterAll
  static void stop() {
    if (s3 != null) {
      s3.close();
    }
    if (registry != null) {
      registry.close();
    }
  }

  @BeforeEach
  void bucket() {
    upstream = Forwarder.start(registry.port());
    bucket = "mirror-" + BUCKETS.incrementAndGet();
    s3.createBucket(bucket);
  }

  @AfterEach
  void closeUpstream() {
    upstream.close();
  }

  private MirrorUnderTest mirror(Vertx vertx, Path cache) {
    return MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "", s3.yaml(bucket));
  }

  /** A mirror that reaches the bucket through {@code bucketPath}. */
  private MirrorUnderTest mirror(Vertx vertx, Path cache, Forwarder bucketPath) {
    return MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "",
        s3.yaml(bucket).replace(s3.url(), bucketPath.url()));
  }

  /** A way to the bucket that cuts the first GET of a key matching {@code keys} after {@code bytes}. */
  private static Forwarder cutting(String keys, long bytes) {
    Forwarder bucketPath = Forwarder.keepingHost(s3.port());
    bucketPath.fault(Forwarder.matching("GET", keys), Fault.cutAfter(bytes), 1);
    return bucketPath;
  }

  /** A mirror that pulls the image's manifest (and its blobs, if asked), then stops. */
  private void pullAndStop(Vertx vertx, Path cache, boolean blobs) {
    MirrorUnderTest m = mirror(vertx, cache);
    try {
      assertThat(m.get("/v2/team/warm/manifests/" + image.manifestDigest(), "Accept", image.mediaType()).body())
          .isEqualTo(image.manifest());
      for (Map.Entry<String, byte[]> blob : blobs ? image.blobs().entrySet() : Set.<Map.Entry<String, byte[]>>of()) {
        assertThat(m.get("/v2/team/warm/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
      }
    } finally {
      m.close();
    }
  }

  @Test
  void aMirrorWithAnEmptyCacheServesWhatAnotherFetchedFromTheBucket(Vertx vertx, @TempDir Path first,
      @TempDir Path second) {
    String manifest = "/v2/team/warm/manifests/" + image.manifestDigest();
    pullAndStop(vertx, first, true);
    // Written through, under the digest, byte for byte.
    eventually(Duration.ofSeconds(20), () -> image.blobs().keySet().stream().allMatch(d -> s3.exists(bucket, key("blobs", d)))
        && s3.exists(bucket, key("manifests", image.manifestDigest())), "every blob and the manifest in the bucket");
    for (Map.Entry<String, byte[]> blob : image.blobs().entrySet()) {
      assertThat(s3.get(bucket, key("blobs", blob.getKey()))).isEqualTo(blob.getValue());
    }
    assertThat(s3.get(bucket, key("manifests", image.manifestDigest()))).isEqualTo(image.manifest());
    upstream.clear();

    MirrorUnderTest b = mirror(vertx, second);
    try {
      HttpResponse<byte[]> got = b.get(manifest, "Accept", image.mediaType());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(image.manifest());
      assertThat(got.headers().firstValue("Content-Type")).hasValue(image.mediaType());
      for (Map.Entry<String, byte[]> blob : image.blobs().entrySet()) {
        HttpResponse<byte[]> layer = b.get("/v2/team/warm/blobs/" + blob.getKey());
        assertThat(layer.statusCode()).isEqualTo(200);
        assertThat(layer.body()).isEqualTo(blob.getValue());
      }
      assertThat(upstream.seen()).isEmpty();
    } finally {
      b.close();
    }
  }

  /**
   * A read from the bucket that breaks off is resumed from the bucket where it stopped: the
   * client gets the whole blob from one response, and upstream is not asked.
   */
  @Test
  void aReadFromTheBucketThatBreaksOffIsResumed(Vertx vertx, @TempDir Path cache) {
    String digest = image.layerDigests().get(1);
    byte[] content = image.blobs().get(digest);
    s3.put(bucket, key("blobs", digest), content);
    try (Forwarder bucketPath = cutting(".*/blobs/sha256/.*", content.length / 3)) {
      MirrorUnderTest m = mirror(vertx, cache, bucketPath);
      try {
        HttpResponse<byte[]> got = m.get("/v2/team/warm/blobs/" + digest);
        assertThat(got.statusCode()).isEqualTo(200);
        assertThat(got.body()).isEqualTo(content);
        // The first read, whole, then the rest from at most where the cut was.
        List<String> ranges = bucketPath.seen().stream().filter(seen -> seen.uri().contains("/blobs/sha256/"))
            .map(seen -> seen.headers().get("Range")).toList();
        assertThat(ranges).hasSize(2);
        assertThat(ranges.get(0)).isNull();
        assertThat(ranges.get(1)).matches("bytes=[1-9][0-9]*-");
        assertThat(Long.parseLong(ranges.get(1).replaceAll("\\D", ""))).isLessThanOrEqualTo(content.length / 3);
        assertThat(upstream.seen()).isEmpty();
      } finally {
        m.close();
      }
    }
  }

  /**
   * A manifest whose read from the bucket breaks off after a few bytes (which the SDK does not
   * report) is given up within the stall limit, and fetched from upstream instead.
   */
  @Test
  void aManifestReadFromTheBucketThatBreaksOffIsFetchedFromUpstream(Vertx vertx, @TempDir Path first,
      @TempDir Path second) {
    String manifest = "/v2/team/warm/manifests/" + image.manifestDigest();
    pullAndStop(vertx, first, false);
    eventually(Duration.ofSeconds(20), () -> s3.exists(bucket, key("manifests", image.manifestDigest())),
        "the manifest in the bucket");
    upstream.clear();
    try (Forwarder bucketPath = cutting(".*/manifests/sha256/.*", 100)) {
      MirrorUnderTest b = mirror(vertx, second, bucketPath);
      try {
        long started = System.nanoTime();
        HttpResponse<byte[]> got = b.get(manifest, "Accept", image.mediaType());
        assertThat(got.statusCode()).isEqualTo(200);
        assertThat(got.body()).isEqualTo(image.manifest());
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(40));
        assertThat(bucketPath.count("GET", ".*/manifests/sha256/.*")).isEqualTo(1);
        assertThat(upstream.count("GET", ".*/manifests/.*")).isEqualTo(1);
      } finally {
        b.close();
      }
    }
  }

  @Test
  void aWrongCopyInTheBucketIsNeverServedAndGoes(Vertx vertx, @TempDir Path cache) {
    String digest = image.layerDigests().get(0);
    byte[] content = image.blobs().get(digest);
    byte[] wrong = content.clone();
    wrong[wrong.length / 2] ^= 1;
    s3.put(bucket, key("blobs", digest), wrong);
    MirrorUnderTest m = mirror(vertx, cache);
    try {
      // Cut short, or refused: never the wrong bytes as a whole 200.
      try {
        HttpResponse<byte[]> first = m.get("/v2/team/warm/blobs/" + digest);
        assertThat(first.statusCode() == 200 && first.body().length == content.length).isFalse();
      } catch (UncheckedIOException cut) {
        // The connection was cut before the last byte: what a client takes for a broken transfer.
      }
      eventually(Duration.ofSeconds(10), () -> !s3.exists(bucket, key("blobs", digest)), "the wrong copy to go");
      HttpResponse<byte[]> retry = m.get("/v2/team/warm/blobs/" + digest);
      assertThat(retry.statusCode()).isEqualTo(200);
      assertThat(retry.body()).isEqualTo(content);
      assertThat(upstream.count("GET", ".*/blobs/" + digest)).isEqualTo(1);
      // And the right one takes its place.
      eventually(Duration.ofSeconds(10), () -> s3.exists(bucket, key("blobs", digest)), "the right copy");
      assertThat(s3.get(bucket, key("blobs", digest))).isEqualTo(content);
    } finally {
      m.close();
    }
  }

  private static String key(String kind, String digest) {
    return kind + "/" + digest.replace(':', '/');
  }
}
