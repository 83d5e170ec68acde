package io.registrymirror.store;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.store.ContentKey.Kind;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache's bound on real files: what passes it is deleted from disk, never what is kept or
 * still being read, and never content cached again after its eviction.
 */
class CacheIndexTest {

  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final int KIB = 1024;

  @TempDir
  Path dir;
  private Vertx vertx;
  private CacheLayout layout;
  private PrometheusMeterRegistry registry;
  private CacheIndex index;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    layout = new CacheLayout(dir);
    registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    index = new CacheIndex(vertx, layout, new MirrorMetrics(registry), 1024 * KIB);
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @Test
  void passingTheBoundDeletesFilesUntilTheCacheFitsAgain() throws Exception {
    index.bound();
    List<ContentKey> keys = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      keys.add(blob(i, 100 * KIB)); // 4000 KiB in all, four times the bound
    }
    eventually(WAIT, () -> {
      index.cleanUp();
      return onDisk(keys) <= 1024 * KIB && index.bytes(Kind.BLOB) <= 1024 * KIB;
    }, "the cache back within its bound on disk");
    assertThat(index.bytes(Kind.BLOB)).isEqualTo(onDisk(keys));
    assertThat(index.count(Kind.BLOB)).isEqualTo(keys.stream().filter(k -> Files.exists(layout.blob(k.digest()))).count());
    assertThat(registry.scrape()).contains("mirror_cache_evictions_total{kind=\"blob\"}");
  }

  @Test
  void whatIsKeptIsNeverEvictedAndGoesOnceLetGo() throws Exception {
    ContentKey kept = key(1000);
    index.keep("tag a", Set.of(kept)); // kept before it is even cached
    index.bound();
    write(kept, 600 * KIB);
    for (int i = 0; i < 30; i++) {
      blob(i, 100 * KIB);
    }
    index.cleanUp();
    eventually(WAIT, () -> index.bytes(Kind.BLOB) <= 1024 * KIB + 600 * KIB, "the others evicted");
    assertThat(Files.exists(layout.blob(kept.digest()))).isTrue();
    assertThat(index.contains(kept)).isTrue();

    index.keep("tag a", Set.of());
    for (int i = 30; i < 60; i++) {
      blob(i, 100 * KIB);
    }
    eventually(WAIT, () -> {
      index.cleanUp();
      return !Files.exists(layout.blob(kept.digest()));
    }, "the entry let go evicted in its turn");
  }

  @Test
  void aFileBeingReadIsDeletedOnlyAfterItsLastReader() throws Exception {
    index.bound();
    ContentKey read = blob(500, 900 * KIB);
    assertThat(index.hold(read)).isEqualTo(900L * KIB);
    assertThat(index.hold(read)).isEqualTo(900L * KIB);
    for (int i = 0; i < 30; i++) {
      popular(i); // used more often than the one being read: that one goes first
    }
    // Caffeine's policy adapts (its window grows and shrinks with the hit rate), so more popular
    // blobs come until the read one is the one that goes, rather than a fixed number of them.
    int[] next = {2000};
    eventually(WAIT, () -> {
      index.cleanUp();
      if (index.contains(read)) {
        popular(next[0]++);
        index.cleanUp();
      }
      return !index.contains(read);
    }, "the read blob evicted from the index");
    // Evicted, but two readers still hold it: the file stays.
    eventually(WAIT, () -> index.bytes(Kind.BLOB) <= 1024 * KIB, "the eviction run");
    assertThat(Files.exists(layout.blob(read.digest()))).isTrue();
    index.release(read);
    assertThat(Files.exists(layout.blob(read.digest()))).isTrue();
    index.release(read);
    eventually(WAIT, () -> !Files.exists(layout.blob(read.digest())), "deleted after the last reader");
  }

  @Test
  void contentCachedAgainAfterItsEvictionIsNotDeleted() throws Exception {
    index.bound();
    ContentKey again = blob(700, 2000 * KIB); // over the bound alone: evicted at once
    eventually(WAIT, () -> {
      index.cleanUp();
      return !index.contains(again) && !Files.exists(layout.blob(again.digest()));
    }, "the oversized blob evicted and deleted");
    index.bound();
    // Fetched again, and kept this time: the earlier eviction must not touch it.
    index.keep("pinned", Set.of(again));
    write(again, 2000 * KIB);
    index.cleanUp();
    assertThat(index.contains(again)).isTrue();
    assertThat(Files.exists(layout.blob(again.digest()))).isTrue();
  }

  /** A cached blob of 100 KiB, used more often than a blob that is only held. */
  private void popular(int n) {
    try {
      ContentKey key = blob(n, 100 * KIB);
      for (int use = 0; use < 8; use++) {
        index.size(key);
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private ContentKey blob(int n, int size) throws Exception {
    ContentKey key = key(n);
    write(key, size);
    return key;
  }

  private void write(ContentKey key, int size) throws Exception {
    Path file = layout.blob(key.digest());
    Files.createDirectories(file.getParent());
    synchronized (index.lock(key)) {
      Files.write(file, new byte[size]);
      index.put(key, size);
    }
  }

  private static ContentKey key(int n) {
    return ContentKey.blob(Digest.sha256(("blob " + n).getBytes()));
  }

  private long onDisk(List<ContentKey> keys) {
    return keys.stream().map(k -> layout.blob(k.digest()).toFile()).mapToLong(java.io.File::length).sum();
  }
}
