package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.AdminApi;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.ImageSeeder.Index;
import io.registrymirror.testing.ImageSeeder.Platform;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import io.vertx.core.json.JsonObject;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pre-warming through {@code POST /api/v1/prefetch}, against the real registry: a prefetched
 * image is then pulled without a single blob request upstream; platforms choose what of an index
 * is fetched; the status shows the job's figures while it runs and when it ends; a client
 * pulling a blob the job is fetching shares its fill.
 */
@Timeout(120)
class PrefetchTest extends MirrorTestBase {

  private static final Duration JOB = Duration.ofSeconds(60);
  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  private final ImageSeeder seeder = new ImageSeeder(registry.url(), System.nanoTime());
  private AdminApi admin;

  @BeforeEach
  void admin() {
    admin = new AdminApi(mirror.url(), null);
  }

  @Test
  void aPrefetchedImageIsPulledWithoutAnyBlobRequestUpstream() throws Exception {
    Image image = seeder.pushImage("prefetch/app", "1.0", 3, 300_000, "docker");

    HttpResponse<String> accepted = admin.prefetch("prefetch/app:1.0");
    assertThat(accepted.statusCode()).isEqualTo(202);
    String location = accepted.headers().firstValue("Location").orElseThrow();
    assertThat(location).matches("/api/v1/prefetch/[0-9a-f]{24}");
    assertThat(new JsonObject(accepted.body()).getString("url")).isEqualTo(location);

    JsonObject status = admin.awaitEnd(location, JOB);
    long bytes = image.blobs().values().stream().mapToLong(b -> b.length).sum();
    assertThat(status.getString("state")).isEqualTo("done");
    assertThat(status.getString("image")).isEqualTo("prefetch/app:1.0");
    assertThat(status.getString("digest")).isEqualTo(image.manifestDigest());
    assertThat(status.getJsonObject("blobs")).isEqualTo(new JsonObject().put("done", 4).put("total", 4));
    assertThat(status.getJsonObject("bytes")).isEqualTo(new JsonObject().put("done", bytes).put("total", bytes));
    assertThat(status.containsKey("error")).isFalse();
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(4);

    // A node pulling it now: manifest by tag, then every blob, none of it from upstream.
    upstream.clear();
    HttpResponse<byte[]> manifest = mirror.get("/v2/prefetch/app/manifests/1.0", "Accept", DOCKER);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (var blob : image.blobs().entrySet()) {
      Received got = mirror.fetch("/v2/prefetch/app/blobs/" + blob.getKey());
      assertThat(got.complete(blob.getValue().length, blob.getKey())).as(blob.getKey()).isTrue();
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isZero();
    // The tag is tracked as a pull would have made it.
    HttpResponse<String> tag = admin.get("/api/v1/tags/local/prefetch/app/1.0");
    assertThat(new JsonObject(tag.body()).getString("digest")).isEqualTo(image.manifestDigest());
    assertThat(metrics()).contains("mirror_prefetch_finished_total{state=\"done\"} 1.0");
  }

  @Test
  void platformsChooseWhatOfAnIndexIsFetched() throws Exception {
    Index index = seeder.pushIndex("prefetch/multi", "2.0",
        List.of(Platform.of("linux/amd64"), Platform.of("linux/arm64/v8"), Platform.of("linux/s390x")));
    Image arm = index.children().get(1);

    JsonObject status = admin.awaitEnd(location(admin.prefetch("local/prefetch/multi:2.0", "linux/arm64/v8")), JOB);
    assertThat(status.getString("state")).isEqualTo("done");
    assertThat(status.getString("digest")).isEqualTo(index.digest());
    assertThat(status.getInteger("manifests")).isEqualTo(2);
    assertThat(status.getJsonObject("blobs").getInteger("total")).isEqualTo(arm.blobs().size());
    for (Image child : index.children()) {
      for (String blob : child.blobs().keySet()) {
        assertThat(Files.exists(mirror.blobFile(blob))).as(blob).isEqualTo(child == arm);
      }
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(arm.blobs().size());

    // Without platforms: the whole index, the arm64 blobs already there.
    status = admin.awaitEnd(location(admin.prefetch("prefetch/multi@" + index.digest())), JOB);
    assertThat(status.getString("state")).isEqualTo("done");
    assertThat(status.getInteger("manifests")).isEqualTo(4);
    assertThat(status.getJsonObject("blobs").getInteger("done")).isEqualTo(6);
    for (Image child : index.children()) {
      for (String blob : child.blobs().keySet()) {
        assertThat(Files.exists(mirror.blobFile(blob))).as(blob).isTrue();
      }
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(6);

    // A platform the index does not have fails the job, saying which it has.
    status = admin.awaitEnd(location(admin.prefetch("prefetch/multi:2.0", "windows/amd64")), JOB);
    assertThat(status.getString("state")).isEqualTo("failed");
    assertThat(status.getString("error")).contains("windows/amd64").contains("linux/arm64/v8");
  }

  @Test
  void theStatusShowsAJobInFlightAndAClientSharesItsFill() throws Exception {
    Image image = seeder.pushImage("prefetch/slow", "1.0", 2, 400_000, "docker");
    String held = image.layerDigests().get(1);
    CompletableFuture<Void> release = new CompletableFuture<>();
    upstream.fault(matching("GET", ".*/blobs/" + held), Fault.holdAfter(100_000, release));

    String location = location(admin.prefetch("prefetch/slow:1.0"));
    eventually(JOB, () -> upstream.arrived("GET", ".*/blobs/" + held) == 1, "the held layer to be asked for");
    // The other blobs end while that one is held.
    eventually(JOB, () -> status(location).getJsonObject("blobs").getInteger("done") == 2, "two blobs done");
    JsonObject running = status(location);
    assertThat(running.getString("state")).isEqualTo("running");
    assertThat(running.getJsonObject("blobs").getInteger("total")).isEqualTo(3);
    long total = image.blobs().values().stream().mapToLong(b -> b.length).sum();
    assertThat(running.getJsonObject("bytes").getLong("total")).isEqualTo(total);
    assertThat(running.getJsonObject("bytes").getLong("done")).isEqualTo(total - image.blobs().get(held).length);

    // A node pulls the layer meanwhile: its answer starts from the fill the job is waiting on.
    HttpResponse<InputStream> pull = mirror.open("/v2/prefetch/slow/blobs/" + held);
    assertThat(pull.statusCode()).isEqualTo(200);
    release.complete(null);
    assertThat(MirrorUnderTest.drain(pull).complete(image.blobs().get(held).length, held)).isTrue();
    assertThat(admin.awaitEnd(location, JOB).getString("state")).isEqualTo("done");
    assertThat(upstream.count("GET", ".*/blobs/" + held)).isEqualTo(1);
  }

  @Test
  void jobsBeyondTheRunningOnesQueueAndPastTheQueueAreRefused() throws Exception {
    seeder.pushImage("prefetch/queued", "1.0", 1, 10_000, "docker");
    CompletableFuture<Void> release = new CompletableFuture<>();
    upstream.fault(matching("HEAD", ".*/manifests/.*"), Fault.holdHeaders(release));

    List<String> locations = new ArrayList<>();
    for (int i = 0; i < 102; i++) {
      locations.add(location(admin.prefetch("prefetch/queued:1.0")));
    }
    // Two run, sharing the tag's revalidation held upstream (within the upstream's timeouts);
    // a hundred wait.
    eventually(JOB, () -> upstream.arrived("HEAD", ".*/manifests/1.0") == 1, "the running jobs to ask upstream");
    assertThat(status(locations.get(0)).getString("state")).isEqualTo("running");
    assertThat(status(locations.get(101)).getString("state")).isEqualTo("queued");
    assertThat(metrics()).contains("mirror_prefetch_jobs{state=\"queued\"} 100.0")
        .contains("mirror_prefetch_jobs{state=\"running\"} 2.0");
    HttpResponse<String> refused = admin.prefetch("prefetch/queued:1.0");
    assertThat(refused.statusCode()).isEqualTo(429);
    assertThat(refused.headers().firstValue("Retry-After")).hasValue("30");
    assertThat(new JsonObject(refused.body()).getJsonArray("errors").getJsonObject(0).getString("code"))
        .isEqualTo("TOOMANYREQUESTS");

    release.complete(null);
    upstream.clearFaults();
    // Jobs of 10 kB end quickly: waiting for each in turn, the first two may already be forgotten.
    eventually(JOB, () -> metrics().contains("mirror_prefetch_finished_total{state=\"done\"} 102.0"),
        "every job done");
    // The last 100 finished are kept, done; the two that ended first are forgotten, and one of
    // the two that ran first ended first of all.
    List<String> forgotten = new ArrayList<>();
    for (String location : locations) {
      HttpResponse<String> answer = admin.get(location);
      if (answer.statusCode() == 404) {
        forgotten.add(location);
      } else {
        assertThat(new JsonObject(answer.body()).getString("state")).isEqualTo("done");
      }
    }
    assertThat(forgotten).hasSize(2).containsAnyOf(locations.get(0), locations.get(1));
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(2);
  }

  @Test
  void aMissingImageFailsItsJob() {
    JsonObject status = admin.awaitEnd(location(admin.prefetch("prefetch/none:1.0")), JOB);
    assertThat(status.getString("state")).isEqualTo("failed");
    assertThat(status.getString("error")).contains("MANIFEST_UNKNOWN");
    assertThat(status.getJsonObject("blobs").getInteger("total")).isZero();
    assertThat(metrics()).contains("mirror_prefetch_finished_total{state=\"failed\"} 1.0");
  }

  @Test
  void badRequestsAreRefusedWithTheOciErrorNamingWhatIsWrong() {
    String[][] cases = {
        // body, what the detail must name
        {"", "JSON object"},
        {"not json", "JSON object"},
        {"[\"nginx\"]", "JSON object"},
        {"{}", "\"image\" is required"},
        {"{\"image\": 5}", "\"image\" is required"},
        {"{\"image\": \"nginx\", \"platform\": \"linux/amd64\"}", "unknown key 'platform'"},
        {"{\"image\": \"Prefetch/App:1.0\"}", "invalid repository name 'Prefetch/App'"},
        {"{\"image\": \"prefetch/app:-bad\"}", "invalid tag '-bad'"},
        {"{\"image\": \"prefetch/app@sha256:abc\"}", "invalid digest"},
        {"{\"image\": \"https://example.com/app:1\"}", "no scheme"},
        {"{\"image\": \"prefetch/app:1.0 \"}", "invalid tag"},
        {"{\"image\": \"\"}", "empty"},
        {"{\"image\": \"prefetch/app\", \"platforms\": \"linux/amd64\"}", "must be a list"},
        {"{\"image\": \"prefetch/app\", \"platforms\": [\"linux\"]}", "not a platform"},
        {"{\"image\": \"prefetch/app\", \"platforms\": [7]}", "not a platform"},
    };
    for (String[] c : cases) {
      HttpResponse<String> r = admin.post("/api/v1/prefetch", c[0]);
      assertThat(r.statusCode()).as(c[0]).isEqualTo(400);
      assertThat(r.headers().firstValue("Content-Type")).hasValue("application/json");
      JsonObject error = new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0);
      assertThat(error.getString("code")).as(c[0]).isEqualTo("NAME_INVALID");
      assertThat(error.getString("detail")).as(c[0]).contains(c[1]);
    }
    // A registry the mirror does not front.
    HttpResponse<String> r = admin.prefetch("quay.io/prefetch/app:1.0");
    assertThat(r.statusCode()).isEqualTo(404);
    JsonObject error = new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0);
    assertThat(error.getString("code")).isEqualTo("NAME_UNKNOWN");
    assertThat(error.getString("detail")).contains("quay.io").contains("not mirrored");
    // A body too long for an admin request is not read at all.
    r = admin.post("/api/v1/prefetch", "{\"image\": \"" + "a".repeat(70_000) + "\"}");
    assertThat(r.statusCode()).isEqualTo(413);
    assertThat(new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0).getString("detail"))
        .contains("Content-Length");
    // Nothing was queued by any of them.
    assertThat(upstream.seen()).isEmpty();
  }

  @Test
  void anUnknownJobIsNotFound() {
    HttpResponse<String> r = admin.get("/api/v1/prefetch/0123456789abcdef01234567");
    assertThat(r.statusCode()).isEqualTo(404);
    assertThat(new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0).getString("code"))
        .isEqualTo("NAME_UNKNOWN");
    assertThat(r.body()).contains("no prefetch job 0123456789abcdef01234567");
  }

  private JsonObject status(String location) {
    return new JsonObject(admin.get(location).body());
  }

  private static String location(HttpResponse<String> accepted) {
    assertThat(accepted.statusCode()).as(accepted.body()).isEqualTo(202);
    return accepted.headers().firstValue("Location").orElseThrow();
  }

  private String metrics() {
    return new String(mirror.get("/metrics").body());
  }
}
