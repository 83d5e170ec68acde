package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code /api/v1/cache} against the real registry: totals and repositories match what was
 * pulled; deleting a blob makes the next pull fetch it again; deleting a repository removes its
 * tags and its own content but not content another tracked tag still uses; bad requests get
 * the OCI error JSON.
 */
class CacheAdminTest extends MirrorTestBase {

  private static final String DOCKER = ImageSeeder.DOCKER_MANIFEST;

  private static Image first;
  private static Image shared;
  private static Image other;

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    first = seeder.pushImage("team/first", "1.0", 2, 50_000, "docker");
    // The same image under another name: its blobs are shared by digest.
    for (Map.Entry<String, byte[]> blob : first.blobs().entrySet()) {
      seeder.pushBlob("team/shared", blob.getValue());
    }
    seeder.pushManifest("team/shared", "1.0", DOCKER, first.manifest());
    shared = first;
    other = seeder.pushImage("team/other", "1.0", 1, 40_000, "docker");
  }

  @Test
  void totalsAndRepositoriesSayWhatWasPulled() {
    pull("team/first", first);
    pull("team/other", other);
    JsonObject totals = json(mirror.get("/api/v1/cache"));
    long blobBytes = first.blobs().values().stream().mapToLong(b -> b.length).sum()
        + other.blobs().values().stream().mapToLong(b -> b.length).sum();
    assertThat(totals.getJsonObject("blobs").getLong("count")).isEqualTo(first.blobs().size() + other.blobs().size());
    assertThat(totals.getJsonObject("blobs").getLong("bytes")).isEqualTo(blobBytes);
    assertThat(totals.getJsonObject("manifests").getLong("count")).isEqualTo(2);
    assertThat(totals.getInteger("tagsTracked")).isEqualTo(2);

    JsonObject page = json(mirror.get("/api/v1/cache/repositories?perPage=1&page=2"));
    assertThat(page.getInteger("total")).isEqualTo(2);
    JsonArray repositories = page.getJsonArray("repositories");
    assertThat(repositories).hasSize(1);
    JsonObject row = repositories.getJsonObject(0);
    assertThat(row.getString("repository")).isEqualTo("team/other");
    assertThat(row.getJsonArray("tags").getJsonObject(0).getString("digest")).isEqualTo(other.manifestDigest());
    assertThat(row.getLong("cachedBytes")).isEqualTo(
        other.blobs().values().stream().mapToLong(b -> b.length).sum() + other.manifest().length);
  }

  @Test
  void aDeletedBlobIsFetchedAgainByTheNextPull() {
    pull("team/other", other);
    String layer = other.layerDigests().get(0);
    HttpResponse<byte[]> deleted = mirror.send("DELETE", "/api/v1/cache/blobs/" + layer);
    assertThat(deleted.statusCode()).isEqualTo(200);
    assertThat(json(deleted).getLong("bytes")).isEqualTo(other.blobs().get(layer).length);
    assertThat(mirror.blobFile(layer)).doesNotExist();
    upstream.clear();
    HttpResponse<byte[]> again = mirror.get("/v2/team/other/blobs/" + layer);
    assertThat(again.body()).isEqualTo(other.blobs().get(layer));
    assertThat(upstream.count("GET", ".*/blobs/" + layer)).isEqualTo(1);

    HttpResponse<byte[]> unknown = mirror.send("DELETE", "/api/v1/cache/blobs/sha256:" + "0".repeat(64));
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(new String(unknown.body())).contains("BLOB_UNKNOWN");
  }

  @Test
  void deletingARepositoryKeepsWhatAnotherTrackedTagUses() {
    pull("team/first", first);
    pull("team/shared", shared);
    pull("team/other", other);
    HttpResponse<byte[]> deleted = mirror.send("DELETE", "/api/v1/cache/repositories/local/team/other");
    assertThat(deleted.statusCode()).as(new String(deleted.body())).isEqualTo(200);
    JsonObject report = json(deleted);
    assertThat(report.getInteger("tags")).isEqualTo(1);
    assertThat(report.getInteger("blobs")).isEqualTo(other.blobs().size());
    other.blobs().keySet().forEach(d -> assertThat(mirror.blobFile(d)).doesNotExist());

    // team/first's image is also team/shared's: deleting team/first deletes its tag only.
    JsonObject firstReport = json(mirror.send("DELETE", "/api/v1/cache/repositories/local/team/first"));
    assertThat(firstReport.getInteger("tags")).isEqualTo(1);
    assertThat(firstReport.getInteger("blobs")).isZero();
    first.blobs().keySet().forEach(d -> assertThat(mirror.blobFile(d)).exists());
    JsonArray tracked = json(mirror.get("/api/v1/tags")).getJsonArray("tags");
    assertThat(tracked.stream().map(t -> ((JsonObject) t).getString("repository"))).containsExactly("team/shared");

    assertThat(mirror.send("DELETE", "/api/v1/cache/repositories/local/team/nothing").statusCode()).isEqualTo(404);
  }

  @Test
  void badRequestsGetTheOciErrorJson() {
    HttpResponse<byte[]> badDigest = mirror.send("DELETE", "/api/v1/cache/blobs/sha256:xyz");
    assertThat(badDigest.statusCode()).isEqualTo(400);
    assertThat(new String(badDigest.body())).contains("DIGEST_INVALID");
    HttpResponse<byte[]> badPage = mirror.get("/api/v1/cache/repositories?page=0");
    assertThat(badPage.statusCode()).isEqualTo(400);
    assertThat(new String(badPage.body())).contains("PAGINATION_NUMBER_INVALID");
    assertThat(mirror.send("PUT", "/api/v1/cache/blobs/sha256:" + "0".repeat(64)).statusCode()).isEqualTo(405);
  }

  private void pull(String repository, Image image) {
    HttpResponse<byte[]> manifest = mirror.get("/v2/" + repository + "/manifests/1.0", "Accept", DOCKER);
    assertThat(manifest.body()).isEqualTo(image.manifest());
    for (Map.Entry<String, byte[]> blob : image.blobs().entrySet()) {
      assertThat(mirror.get("/v2/" + repository + "/blobs/" + blob.getKey()).body()).isEqualTo(blob.getValue());
    }
    // A client has its last byte once the blob is verified, a moment before it is in the cache.
    eventually(Duration.ofSeconds(10), () -> image.blobs().keySet().stream().allMatch(d -> Files.exists(mirror.blobFile(d))),
        "the pulled blobs in the cache");
  }

  private static JsonObject json(HttpResponse<byte[]> response) {
    return new JsonObject(new String(response.body()));
  }
}
