package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Chromium;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.Required;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * The status page at {@code /}, loaded in headless Chromium in front of the real registry: the
 * upstream and its health, the hit ratio, and a tag's timeline after it moved upstream, most
 * recent first; markup in a name is shown as text; the page and its data are not counted as
 * registry requests, send their security headers, and need a user when clients do.
 */
@Timeout(180)
class StatusPageTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;
  private static final Path SCREENSHOT = Path.of("target", "status-page.png");

  /**
   * Markup where the page shows a tag's upstream. Tag and repository names cannot hold it (their
   * grammars allow neither {@code <} nor {@code =}), but the upstream part of a tag record's path
   * in the cache is read back as it is, so it is the name markup can reach the page through.
   */
  private static final String HOSTILE = "<img id=injected src=x onerror=document.title=1>";

  private final ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());

  @Test
  void theBrowserShowsTheUpstreamTheHitRatioAndATagsMovesMostRecentFirst(Vertx vertx, @TempDir Path cache,
      @TempDir Path browser) throws Exception {
    Required.tool(Chromium.available(), "chromium (the status page is loaded in it)", "chromium");
    Image first = seeder.pushImage("status/app", "latest", 1, 20_000, "docker");
    plantTagRecord(cache, HOSTILE, "library/evil", "latest", first.manifestDigest());
    // Every pull revalidates the tag, so the pull after the re-push sees the move.
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "tagTtl: 0s",
        "tags:\n  refreshInterval: 0s\n");
    try {
      pull(m, first);
      pull(m, first);
      Image second = seeder.pushImage("status/app", "latest", 1, 20_000, "docker");
      pull(m, second);

      Map<String, Long> requests = blobAndManifestRequests(m);
      long fromCache = requests.get("hit") + requests.get("stale");
      long answered = fromCache + requests.get("miss");
      assertThat(requests.get("hit")).isPositive();
      assertThat(requests.get("miss")).isPositive();
      long allRequests = allRegistryRequests(m);

      String dom = Chromium.load(m.url() + "/", SCREENSHOT, browser);

      assertThat(dom).contains("data-state=\"ready\"");
      assertThat(text(dom, "hit-ratio")).isEqualTo(Math.round(100.0 * fromCache / answered) + "%");
      assertThat(text(dom, "hit-detail")).startsWith(fromCache + " of " + answered + " blob and manifest requests");
      String upstreams = element(dom, "<table id=\"upstreams\">", "</table>");
      assertThat(upstreams).contains(">local<").contains(upstream.url()).contains("class=\"health health-ok\"");

      String moved = element(dom, "<span class=\"repository\">status/app</span>", "</article>");
      assertThat(moved).contains("<span class=\"tagname\">latest</span>");
      assertThat(moved.indexOf(second.manifestDigest())).as("the digest it moved to, first").isPositive()
          .isLessThan(moved.indexOf(first.manifestDigest()));
      assertThat(moved).contains("moved here, seen by a pull").contains("first seen");
      assertThat(moved.indexOf("moved here")).isLessThan(moved.indexOf("first seen"));

      assertThat(dom).contains("&lt;img id=injected src=x onerror=document.title=1&gt;/");
      assertThat(dom).doesNotContain("<img").doesNotContain("id=\"injected\"");
      assertThat(text(dom, "tags-tracked")).isEqualTo("2");
      assertThat(dom).as("a mirror alone shows no cluster").contains("<section id=\"cluster\" hidden=\"\">");

      assertThat(allRegistryRequests(m)).as("the page and its data are not registry requests").isEqualTo(allRequests);
      byte[] png = Files.readAllBytes(SCREENSHOT);
      assertThat(png).startsWith(0x89, 'P', 'N', 'G');
    } finally {
      m.close();
    }
  }

  @Test
  void thePageAndItsFilesComeWithTheirTypesAndAPolicyOfThisOriginOnly() {
    long before = allRegistryRequests(mirror);

    HttpResponse<byte[]> page = mirror.get("/");
    assertThat(page.statusCode()).isEqualTo(200);
    assertThat(page.headers().firstValue("Content-Type")).hasValue("text/html; charset=utf-8");
    assertThat(page.headers().firstValue("Content-Security-Policy")).get().asString()
        .startsWith("default-src 'self';").doesNotContain("unsafe");
    assertThat(page.headers().firstValue("X-Content-Type-Options")).hasValue("nosniff");
    assertThat(page.headers().firstValue("Cache-Control")).hasValue("no-cache");
    assertThat(new String(page.body(), StandardCharsets.UTF_8))
        .contains("<script src=\"/status/page.js\" defer></script>").doesNotContain("<script>");

    HttpResponse<byte[]> head = mirror.head("/");
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.headers().firstValue("Content-Length")).hasValue(String.valueOf(page.body().length));
    assertThat(head.body()).isEmpty();

    assertThat(mirror.get("/status/page.js").headers().firstValue("Content-Type"))
        .hasValue("text/javascript; charset=utf-8");
    assertThat(mirror.get("/status/page.css").headers().firstValue("Content-Type")).hasValue("text/css; charset=utf-8");
    assertThat(mirror.get("/status/other.js").statusCode()).isEqualTo(404);

    HttpResponse<byte[]> status = mirror.get("/api/v1/status");
    assertThat(status.statusCode()).isEqualTo(200);
    assertThat(status.headers().firstValue("Cache-Control")).hasValue("no-store");
    JsonObject local = new JsonObject(new String(status.body(), StandardCharsets.UTF_8))
        .getJsonArray("upstreams").getJsonObject(0);
    assertThat(local.getString("name")).isEqualTo("local");
    assertThat(local.getString("url")).isEqualTo(upstream.url());
    assertThat(local.getString("health")).isEqualTo("idle");

    assertThat(allRegistryRequests(mirror)).isEqualTo(before);
  }

  @Test
  void anUpstreamThatAnswersIsOk() throws Exception {
    pull(mirror, seeder.pushImage("health/app", "1.0", 1, 10_000, "docker"));
    JsonObject local = upstreamStatus(mirror);
    assertThat(local.getString("health")).isEqualTo("ok");
    assertThat(local.getLong("answers")).isPositive();
    assertThat(local.getLong("failed")).isZero();
  }

  @Test
  void anUpstreamWhoseEveryAnswerFailsIsDown() {
    upstream.fault(matching("GET", ".*"), Fault.status(503, "", Map.of()));
    upstream.fault(matching("HEAD", ".*"), Fault.status(503, "", Map.of()));
    assertThat(mirror.get("/v2/health/app/manifests/2.0", "Accept", DOCKER).statusCode()).isEqualTo(503);
    JsonObject local = upstreamStatus(mirror);
    assertThat(local.getString("health")).isEqualTo("down");
    assertThat(local.getLong("failed")).isPositive().isEqualTo(local.getLong("answers"));
  }

  @Test
  void withClientAuthenticationThePageAndItsDataNeedAUser(Vertx vertx, @TempDir Path cache, @TempDir Path files)
      throws Exception {
    Path htpasswd = Files.writeString(files.resolve("htpasswd"), "viewer:" + BCrypt.hashpw("s3cret", BCrypt.gensalt(5)) + "\n");
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "",
        "auth:\n  htpasswd: " + htpasswd + "\n");
    try {
      for (String path : new String[] {"/", "/api/v1/status"}) {
        HttpResponse<byte[]> refused = m.get(path);
        assertThat(refused.statusCode()).as(path).isEqualTo(401);
        assertThat(refused.headers().firstValue("WWW-Authenticate")).as(path).get().asString().startsWith("Basic ");
        String user = "Basic " + Base64.getEncoder().encodeToString("viewer:s3cret".getBytes(StandardCharsets.UTF_8));
        assertThat(m.get(path, "Authorization", user).statusCode()).as(path).isEqualTo(200);
      }
      // The script and style hold no data; operators' scrapers stay as they were.
      assertThat(m.get("/status/page.js").statusCode()).isEqualTo(200);
      assertThat(m.get("/metrics").statusCode()).isEqualTo(200);
    } finally {
      m.close();
    }
  }

  /** A client's pull: the manifest by tag, then every blob it names. */
  private static void pull(MirrorUnderTest m, Image image) {
    HttpResponse<byte[]> manifest = m.get("/v2/" + image.repo() + "/manifests/" + image.tag(), "Accept", DOCKER);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (Map.Entry<String, byte[]> blob : image.blobs().entrySet()) {
      assertThat(m.get("/v2/" + image.repo() + "/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
    }
  }

  /** A tag record in the cache, as the mirror writes them, tracked from start-up on. */
  private static void plantTagRecord(Path cache, String upstreamName, String repository, String tag, String digest)
      throws Exception {
    String then = Instant.now().minus(1, ChronoUnit.HOURS).toString();
    JsonObject record = new JsonObject().put("digest", digest).put("mediaType", DOCKER).put("size", 100)
        .put("accept", DOCKER).put("firstSeen", then).put("lastChecked", then).put("lastChanged", then)
        .put("lastPulled", then).putNull("pinned").put("history", new JsonArray());
    Path file = cache.resolve("tags").resolve(upstreamName).resolve(repository).resolve("_tags").resolve(tag);
    Files.createDirectories(file.getParent());
    Files.writeString(file, record.encode());
  }

  private static JsonObject upstreamStatus(MirrorUnderTest m) {
    JsonObject status = new JsonObject(new String(m.get("/api/v1/status").body(), StandardCharsets.UTF_8));
    return status.getJsonArray("upstreams").getJsonObject(0);
  }

  /** Blob and manifest requests by result, as {@code /metrics} counts them. */
  private static Map<String, Long> blobAndManifestRequests(MirrorUnderTest m) {
    Map<String, Long> byResult = new HashMap<>(Map.of("hit", 0L, "miss", 0L, "stale", 0L));
    Matcher series = Pattern.compile("^mirror_requests_total\\{kind=\"(blob|manifest)\",result=\"(\\w+)\"} (\\S+)$",
        Pattern.MULTILINE).matcher(metrics(m));
    while (series.find()) {
      byResult.merge(series.group(2), (long) Double.parseDouble(series.group(3)), Long::sum);
    }
    return byResult;
  }

  /** Registry requests of every kind and result, as {@code /metrics} counts them. */
  private static long allRegistryRequests(MirrorUnderTest m) {
    return metrics(m).lines().filter(l -> l.startsWith("mirror_requests_total{"))
        .mapToLong(l -> (long) Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
  }

  private static String metrics(MirrorUnderTest m) {
    return new String(m.get("/metrics").body(), StandardCharsets.UTF_8);
  }

  /** The text of the element with that id, whose content is text only. */
  private static String text(String dom, String id) {
    Matcher m = Pattern.compile("id=\"" + id + "\"[^>]*>([^<]*)<").matcher(dom);
    assertThat(m.find()).as("an element #" + id + " in:\n" + dom).isTrue();
    return m.group(1);
  }

  /** The markup from {@code start} to the next {@code end}. */
  private static String element(String dom, String start, String end) {
    int from = dom.indexOf(start);
    assertThat(from).as(start + " in:\n" + dom).isNotNegative();
    return dom.substring(from, dom.indexOf(end, from));
  }
}
