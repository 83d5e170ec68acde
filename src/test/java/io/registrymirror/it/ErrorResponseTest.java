package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every error is the OCI error JSON with its code's own status; invalid requests are refused
 * before anything is sent upstream.
 */
class ErrorResponseTest extends MirrorTestBase {

  private static final String MISSING =
      "sha256:0000000000000000000000000000000000000000000000000000000000000000";

  private static Image image;


  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 1, 10_000, "docker");
  }

  @ParameterizedTest(name = "{0} {1} -> {2} {3}")
  @CsvSource({
      "GET, /v2/Team/app/manifests/1.0, 400, NAME_INVALID",
      "GET, /v2/team/../app/manifests/1.0, 400, NAME_INVALID",
      "GET, /v2/team/%2e%2e/app/manifests/1.0, 400, NAME_INVALID",
      "GET, /v2/team%2Fapp/blobs/" + MISSING + ", 400, NAME_INVALID",
      "HEAD, /v2/team//app/manifests/1.0, 400, NAME_INVALID",
      "GET, /v2/team/app/manifests/-bad, 400, TAG_INVALID",
      "GET, /v2/team/app/manifests/sha256:abc, 400, DIGEST_INVALID",
      "GET, /v2/team/app/manifests/sha256:" + "A" + ", 400, DIGEST_INVALID",
      "GET, /v2/team/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e, 400, DIGEST_INVALID",
      "GET, /v2/team/app/blobs/latest, 400, DIGEST_INVALID",
      "GET, /v2/team/app/referrers/nope, 400, DIGEST_INVALID",
      "GET, /v2/team/app/tags/list?n=-1, 400, PAGINATION_NUMBER_INVALID",
      "GET, /v2/team/app/tags/list?n=abc, 400, PAGINATION_NUMBER_INVALID",
      "GET, /v2/team/app/manifests/1.0?ns=quay.io, 404, NAME_UNKNOWN",
      "GET, /v2/team/app/uploads/x, 404, NAME_UNKNOWN",
      "GET, /v2/_catalog, 404, NAME_UNKNOWN",
      "GET, /nowhere, 404, NAME_UNKNOWN",
      "PUT, /v2/team/app/manifests/1.0, 405, UNSUPPORTED",
      "DELETE, /v2/team/app/blobs/" + MISSING + ", 405, UNSUPPORTED",
      "POST, /v2/team/app/blobs/uploads/, 405, UNSUPPORTED",
      "PATCH, /v2/team/app/blobs/uploads/x, 405, UNSUPPORTED"})
  void invalidRequestsAreRefusedWithoutAskingUpstream(String method, String path, int status, String code) {
    HttpResponse<byte[]> response = mirror.send(method, path);
    assertError(response, status, code, method.equals("HEAD"));
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void unknownContentIsReportedAsUpstreamDoes() {
    assertError(mirror.get("/v2/team/app/manifests/nope"), 404, "MANIFEST_UNKNOWN", false);
    assertError(mirror.head("/v2/team/app/manifests/nope"), 404, "MANIFEST_UNKNOWN", true);
    assertError(mirror.get("/v2/team/app/manifests/" + MISSING), 404, "MANIFEST_UNKNOWN", false);
    assertError(mirror.get("/v2/team/app/blobs/" + MISSING), 404, "BLOB_UNKNOWN", false);
    assertError(mirror.head("/v2/team/app/blobs/" + MISSING), 404, "BLOB_UNKNOWN", true);
  }

  @Test
  void badRangeOnACachedBlob() {
    String layer = image.layerDigests().get(0);
    assertThat(mirror.get("/v2/team/app/blobs/" + layer).statusCode()).isEqualTo(200);
    assertError(mirror.get("/v2/team/app/blobs/" + layer, "Range", "bytes=abc"), 416, "RANGE_INVALID", false);
    assertError(mirror.get("/v2/team/app/blobs/" + layer, "Range", "bytes=20-10"), 416, "RANGE_INVALID", false);
    assertError(mirror.get("/v2/team/app/blobs/" + layer, "Range", "bytes=999999999-"), 416, "RANGE_INVALID", false);
  }

  @Test
  void upstreamRateLimitIsPassedOnWithItsRetryAfter() {
    upstream.fault(matching("HEAD", ".*/manifests/.*"), Fault.status(429, "", Map.of("Retry-After", "17")));
    HttpResponse<byte[]> r = mirror.get("/v2/team/app/manifests/1.0");
    assertError(r, 429, "TOOMANYREQUESTS", false);
    assertThat(r.headers().firstValue("Retry-After")).hasValue("17");
  }

  @Test
  void upstreamRefusalIsDeniedNeverUnauthorized() {
    upstream.fault(matching("HEAD", ".*/manifests/.*"), Fault.status(401, "", Map.of()));
    assertError(mirror.get("/v2/team/app/manifests/1.0"), 403, "DENIED", false);
    upstream.clearFaults();
    upstream.fault(matching("GET", ".*/blobs/.*"), Fault.status(403, "", Map.of()));
    assertError(mirror.get("/v2/team/app/blobs/" + image.layerDigests().get(0)), 403, "DENIED", false);
  }

  @Test
  void upstreamServerErrorIsUnavailable() {
    upstream.fault(matching("GET", ".*/blobs/.*"), Fault.status(500, "", Map.of()));
    assertError(mirror.get("/v2/team/app/blobs/" + image.layerDigests().get(0)), 503, "UNAVAILABLE", false);
    assertThat(mirror.filesUnder("blobs")).isZero();
  }

  @Test
  void unreachableUpstreamWithNothingCachedFailsFast(Vertx vertx, @TempDir Path cache) throws Exception {
    int closed;
    try (ServerSocket s = new ServerSocket(0)) {
      closed = s.getLocalPort();
    }
    try (MirrorUnderTest orphan = MirrorUnderTest.start(vertx, "http://127.0.0.1:" + closed, cache)) {
      long started = System.nanoTime();
      assertError(orphan.get("/v2/team/app/manifests/1.0"), 503, "UNAVAILABLE", false);
      assertError(orphan.get("/v2/team/app/blobs/" + MISSING), 503, "UNAVAILABLE", false);
      assertThat((System.nanoTime() - started) / 1_000_000).as("milliseconds").isLessThan(2_000);
    }
  }

  static void assertError(HttpResponse<byte[]> response, int status, String code, boolean head) {
    assertThat(response.statusCode()).isEqualTo(status);
    assertThat(response.headers().firstValue("Content-Type")).hasValue("application/json");
    if (head) {
      assertThat(response.body()).isEmpty();
      return;
    }
    JsonObject body = new JsonObject(new String(response.body()));
    assertThat(body.getJsonArray("errors").getJsonObject(0).getString("code")).isEqualTo(code);
    assertThat(body.getJsonArray("errors").getJsonObject(0).getString("message")).isNotBlank();
  }
}
