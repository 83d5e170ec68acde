package io.registrymirror.it;

import static io.registrymirror.it.ErrorResponseTest.assertError;
import static io.registrymirror.testing.Forwarder.matching;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Manifest and tag rules: content negotiation, what is refused, tag revalidation and stale
 * answers, routing, and the lists passed through from upstream.
 */
class ManifestRulesTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final String OCI = ImageSeeder.OCI_MANIFEST;
  private static final String SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";

  private static Image image;


  @BeforeAll
  static void seed() throws Exception {
    image = new ImageSeeder(registry.url()).pushImage("team/app", "1.0", 1, 10_000, "docker");
  }

  /** A TTL of zero: every tag request revalidates, so each test sees upstream's part. */
  @Override
  protected String upstreamYaml() {
    return "tagTtl: 0s";
  }

  @Test
  void everyAcceptLineReachesUpstreamButSchema1() {
    HttpResponse<byte[]> r = mirror.get("/v2/team/app/manifests/1.0",
        "Accept", SCHEMA1, "Accept", OCI, "Accept", DOCKER + ", application/json");
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).isEqualTo(image.manifest());
    List<String> sent = upstream.seen().get(0).headers().getAll("Accept");
    assertThat(String.join(",", sent)).contains(OCI, DOCKER).doesNotContain(SCHEMA1);
  }

  @Test
  void tagsAreRevalidatedWithHeadOnlyOnceTheBodyIsCached() {
    assertThat(mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER).body()).isEqualTo(image.manifest());
    upstream.clear();
    for (int i = 0; i < 3; i++) {
      HttpResponse<byte[]> r = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
      assertThat(r.body()).isEqualTo(image.manifest());
      assertThat(r.headers().firstValue("X-Mirror-Cache")).hasValue("miss");
    }
    assertThat(upstream.count("HEAD", ".*/manifests/1.0")).isEqualTo(3);
    assertThat(upstream.count("GET", ".*")).isZero();
  }

  @Test
  void lastKnownTagIsServedWhenUpstreamFails() {
    assertThat(mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER).statusCode()).isEqualTo(200);
    for (int status : new int[] {503, 429, 500}) {
      upstream.clearFaults();
      upstream.fault(matching("HEAD", ".*/manifests/.*"), Fault.status(status, "", Map.of()));
      HttpResponse<byte[]> stale = mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER);
      assertThat(stale.statusCode()).isEqualTo(200);
      assertThat(stale.body()).isEqualTo(image.manifest());
      assertThat(stale.headers().firstValue("X-Mirror-Cache")).hasValue("stale");
      assertThat(stale.headers().firstValue("Docker-Content-Digest")).hasValue(image.manifestDigest());
    }
    // A tag deleted upstream is not served from the past.
    upstream.clearFaults();
    upstream.fault(matching("HEAD", ".*/manifests/.*"), Fault.status(404, "", Map.of()));
    assertError(mirror.get("/v2/team/app/manifests/1.0", "Accept", DOCKER), 404, "MANIFEST_UNKNOWN", false);
  }

  @Test
  void schema1IsRefused() {
    upstream.fault(matching("GET", ".*/manifests/v1"), Fault.status(200,
        "{\"schemaVersion\":1,\"name\":\"team/app\",\"tag\":\"v1\"}", Map.of("Content-Type", SCHEMA1)));
    upstream.fault(matching("HEAD", ".*/manifests/v1"), Fault.status(405, "", Map.of()));
    assertError(mirror.get("/v2/team/app/manifests/v1"), 400, "MANIFEST_INVALID", false);
    // Refused for what upstream sent, not before asking: the schema 1 body was fetched, and not kept.
    assertThat(upstream.count("GET", ".*/manifests/v1")).isEqualTo(1);
    assertThat(mirror.filesUnder("manifests")).isZero();
  }

  @Test
  void manifestsOver4MiBAreRefused() {
    String huge = "{\"schemaVersion\":2,\"pad\":\"" + "x".repeat(5 << 20) + "\"}";
    upstream.fault(matching("HEAD", ".*/manifests/huge"), Fault.status(405, "", Map.of()));
    upstream.fault(matching("GET", ".*/manifests/huge"), Fault.status(200, huge, Map.of("Content-Type", OCI)));
    assertError(mirror.get("/v2/team/app/manifests/huge", "Accept", OCI), 400, "MANIFEST_INVALID", false);
    assertThat(mirror.filesUnder("manifests")).isZero();
  }

  @Test
  void aManifestThatDoesNotMatchItsDigestIsNeverServed() {
    String digest = image.manifestDigest();
    upstream.fault(matching("GET", ".*/manifests/" + digest), Fault.flipByte(10));
    HttpResponse<byte[]> r = mirror.get("/v2/team/app/manifests/" + digest, "Accept", DOCKER);
    assertError(r, 503, "UNAVAILABLE", false);
    assertThat(mirror.filesUnder("manifests")).isZero();
  }

  @Test
  void routesByNamespaceParameterAndByPathPrefix() {
    HttpResponse<byte[]> byNs = mirror.get("/v2/team/app/manifests/1.0?ns=local", "Accept", DOCKER);
    assertThat(byNs.statusCode()).isEqualTo(200);
    assertThat(byNs.headers().firstValue("OCI-Namespace")).hasValue("local");
    HttpResponse<byte[]> byPath = mirror.get("/v2/local/team/app/manifests/1.0", "Accept", DOCKER);
    assertThat(byPath.body()).isEqualTo(image.manifest());
    HttpResponse<byte[]> blob = mirror.get("/v2/local/team/app/blobs/" + image.layerDigests().get(0) + "?ns=local");
    assertThat(blob.body()).isEqualTo(image.blobs().get(image.layerDigests().get(0)));
    assertThat(upstream.seen()).allSatisfy(s -> assertThat(s.uri()).startsWith("/v2/team/app/"));
  }

  @Test
  void tagListsPassThroughWithLinksPointingAtTheMirror() {
    HttpResponse<byte[]> real = mirror.get("/v2/team/app/tags/list");
    assertThat(real.statusCode()).isEqualTo(200);
    assertThat(new JsonObject(new String(real.body())).getJsonArray("tags").getList()).contains("1.0");

    upstream.fault(matching("GET", ".*/tags/list.*"), Fault.status(200,
        "{\"name\":\"team/app\",\"tags\":[\"a\",\"b\"]}",
        Map.of("Content-Type", "application/json", "Link", "</v2/team/app/tags/list?last=b&n=2>; rel=\"next\"")));
    HttpResponse<byte[]> page = mirror.get("/v2/local/team/app/tags/list?n=2");
    assertThat(page.headers().firstValue("Link"))
        .hasValue("</v2/local/team/app/tags/list?last=b&n=2>; rel=\"next\"");
    assertThat(upstream.seen().get(upstream.seen().size() - 1).uri()).isEqualTo("/v2/team/app/tags/list?n=2");
  }

  @Test
  void referrersPassUpstreamsAnswerThroughIncludingItsNotFound() {
    HttpResponse<byte[]> none = mirror.get("/v2/team/app/referrers/" + image.manifestDigest());
    assertThat(none.statusCode()).isEqualTo(404);

    String index = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
    upstream.fault(matching("GET", ".*/referrers/.*"), Fault.status(200, index,
        Map.of("Content-Type", "application/vnd.oci.image.index.v1+json", "OCI-Filters-Applied", "artifactType")));
    HttpResponse<byte[]> some = mirror.get("/v2/team/app/referrers/" + image.manifestDigest()
        + "?artifactType=application/vnd.example.sbom");
    assertThat(some.statusCode()).isEqualTo(200);
    assertThat(new String(some.body())).isEqualTo(index);
    assertThat(some.headers().firstValue("OCI-Filters-Applied")).hasValue("artifactType");
    assertThat(upstream.seen().get(upstream.seen().size() - 1).uri())
        .endsWith("?artifactType=application%2Fvnd.example.sbom");
  }
}
