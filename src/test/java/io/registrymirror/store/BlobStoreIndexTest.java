package io.registrymirror.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Start-up: what an earlier run left in {@code tmp/} is removed, the index is read from disk in
 * the background, and until it is complete a blob it does not know yet is found on disk.
 */
class BlobStoreIndexTest {

  @TempDir
  Path dir;
  private Vertx vertx;
  private CacheLayout layout;
  private BlobStore store;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    layout = new CacheLayout(dir);
    store = new BlobStore(vertx, layout, new CacheIndex(vertx, layout, null, 0));
  }

  @AfterEach
  void stop() throws Exception {
    get(vertx.close());
  }

  @Test
  void leftoversAreRemovedAndBlobsOnDiskAreFoundBeforeAndAfterTheIndexIsRead() throws Exception {
    Digest one = blob("one");
    Digest two = blob("two, a little longer");
    Files.createDirectories(layout.tmp());
    Files.write(layout.tmp().resolve("abc-123.part"), new byte[10]);
    Path stray = layout.blobs().resolve("sha256/zz/not-a-digest");
    Files.createDirectories(stray.getParent());
    Files.write(stray, new byte[3]);

    get(store.open());
    assertThat(layout.tmp().resolve("abc-123.part")).doesNotExist();
    // Not read yet: the index does not know the blobs, but a look on disk finds one.
    assertThat(store.loaded()).isFalse();
    assertThat(store.size(one)).isNull();
    get(store.probe(one));
    assertThat(store.size(one)).isEqualTo(3L);
    get(store.probe(blobDigest("absent")));
    assertThat(store.size(blobDigest("absent"))).isNull();

    get(store.loadIndex());
    assertThat(store.loaded()).isTrue();
    assertThat(store.size(two)).isEqualTo((long) "two, a little longer".length());
    assertThat(store.size(one)).isEqualTo(3L);
  }

  private Digest blob(String content) throws Exception {
    Digest d = blobDigest(content);
    Path file = layout.blob(d);
    Files.createDirectories(file.getParent());
    Files.writeString(file, content);
    return d;
  }

  private static Digest blobDigest(String content) {
    return Digest.sha256(content.getBytes());
  }

  private static <T> T get(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get();
  }
}
