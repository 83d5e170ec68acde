package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An upstream whose name carries a port ({@code registry.example:5000}, as a self-hosted
 * registry's often does) is reached by path prefix just as by containerd's {@code ?ns=}.
 */
class UpstreamNameWithPortTest extends MirrorTestBase {

  private static final String NAME = "registry.example:5000";
  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  private static Image image;

  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("acme/app", "1.0", 1, 30_000, "docker");
  }

  @Test
  void aPullByPathPrefixReachesIt(Vertx vertx, @TempDir Path cache) {
    try (MirrorUnderTest m = MirrorUnderTest.startWithConfig(vertx, """
        listen: 127.0.0.1:0
        cache:
          dir: %s
        upstreams:
          docker.io:
            url: http://127.0.0.1:1
            default: true
          %s:
            url: %s
        """.formatted(cache, NAME, upstream.url()), cache)) {
      String prefix = "/v2/" + NAME + "/acme/app";
      HttpResponse<byte[]> manifest = m.get(prefix + "/manifests/1.0", "Accept", DOCKER);
      assertThat(manifest.statusCode()).as(new String(manifest.body())).isEqualTo(200);
      assertThat(manifest.body()).isEqualTo(image.manifest());
      for (String digest : image.blobs().keySet()) {
        HttpResponse<byte[]> blob = m.get(prefix + "/blobs/" + digest);
        assertThat(blob.statusCode()).isEqualTo(200);
        assertThat(blob.body()).isEqualTo(image.blobs().get(digest));
      }
      // The same through ?ns=, containerd's way, with and without the name in the path too.
      assertThat(m.get("/v2/acme/app/manifests/1.0?ns=" + NAME, "Accept", DOCKER).body()).isEqualTo(image.manifest());
      assertThat(m.get(prefix + "/manifests/1.0?ns=" + NAME, "Accept", DOCKER).body()).isEqualTo(image.manifest());
      // An upstream that is not configured is still refused before any connection.
      assertThat(m.get("/v2/other.example:5000/acme/app/manifests/1.0", "Accept", DOCKER).statusCode())
          .isEqualTo(400);
      assertThat(upstream.seen()).isNotEmpty().allSatisfy(s -> assertThat(s.uri()).startsWith("/v2/acme/app/"));
    }
  }
}
