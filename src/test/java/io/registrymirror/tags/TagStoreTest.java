package io.registrymirror.tags;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.store.CacheLayout;
import io.registrymirror.store.CacheWrites;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mirror serves while the tag records on disk load: a record a pull has read and changed in
 * the meantime is what stays, not the older one the load reads from disk, and every other record
 * loads.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class TagStoreTest {

  private static final String TYPE = "application/vnd.oci.image.manifest.v1+json";

  @TempDir
  Path dir;

  private Vertx vertx;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    // What the cache's opening makes: records are written through tmp/.
    Files.createDirectories(new CacheLayout(dir).tmp());
  }

  @AfterEach
  void stop() throws Exception {
    await(vertx.close());
  }

  @Test
  void aRecordChangedWhileTheRecordsLoadKeepsTheChange() throws Exception {
    TagKey moved = new TagKey("docker.io", new RepositoryName("library/alpine"), "3");
    TagKey other = new TagKey("docker.io", new RepositoryName("library/nginx"), "1.27");
    Descriptor before = descriptor("before");
    Descriptor after = descriptor("after");

    TagStore earlier = store();
    for (TagKey key : new TagKey[] {moved, other}) {
      earlier.update(key, r -> TagRecord.first(before, TYPE, 1_000, null));
      await(earlier.save(key));
    }

    // After a restart, a pull reads one record from disk and sees the tag move, before the
    // records load (its write not done yet: the file still holds the old digest).
    TagStore restarted = store();
    Optional<TagRecord> read = await(restarted.get(moved));
    assertThat(read).map(TagRecord::digest).contains(before.digest());
    restarted.update(moved, r -> r.checked(after, TYPE, 2_000, TagMove.Seen.PULL, 10));

    await(restarted.open());

    assertThat(restarted.cached(moved).digest()).isEqualTo(after.digest());
    assertThat(restarted.cached(moved).moves()).hasSize(1);
    assertThat(restarted.cached(other)).isNotNull();
    assertThat(restarted.cached(other).digest()).isEqualTo(before.digest());
  }

  private TagStore store() {
    return new TagStore(vertx, new CacheLayout(dir), new CacheWrites(new MirrorMetrics(new SimpleMeterRegistry())),
        100, TagContent.NONE);
  }

  private static Descriptor descriptor(String content) {
    byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
    return new Descriptor(TYPE, Digest.sha256(bytes), bytes.length);
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }
}
