package io.registrymirror.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.oci.Digest;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Many fills at once under a memory budget far smaller than their blobs: each upstream is paused
 * while memory is short and resumed when it is given back, none is left paused for good, every
 * blob ends up whole in the cache, and a reader tailing each fill gets exactly its bytes.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FillMemoryTest {

  private static final int FILLS = 6;
  private static final int CHUNK = 64 * 1024;
  private static final int SIZE = 6 << 20;
  private static final long BUDGET = 1 << 20;

  @TempDir
  Path dir;
  private Vertx vertx;
  private BlobStore store;
  private final List<ByteBuf> given = new CopyOnWriteArrayList<>();

  @BeforeEach
  void open() throws Exception {
    vertx = Vertx.vertx();
    CacheLayout layout = new CacheLayout(dir);
    store = new BlobStore(vertx, layout, new CacheIndex(vertx, layout, null, 0), BUDGET);
    store.open().toCompletionStage().toCompletableFuture().get();
  }

  @AfterEach
  void close() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @Test
  void concurrentFillsStayWithinTheBudgetAndAllComplete() throws Exception {
    AtomicLong peak = new AtomicLong();
    List<Future<Void>> filled = new ArrayList<>();
    List<Future<byte[]>> read = new ArrayList<>();
    List<Digest> digests = new ArrayList<>();
    for (int i = 0; i < FILLS; i++) {
      byte[] blob = new byte[SIZE];
      new Random(i).nextBytes(blob);
      Digest digest = Digest.sha256(blob);
      digests.add(digest);
      Context context = ((io.vertx.core.internal.VertxInternal) vertx).createEventLoopContext();
      Promise<Void> done = Promise.promise();
      Promise<byte[]> tailed = Promise.promise();
      context.runOnContext(v -> store.create(digest).onComplete(created -> {
        BlobFill fill = created.result();
        fill.expect(SIZE);
        tail(fill.open(), 0, Digest.Algorithm.SHA256.newMessageDigest()).onComplete(tailed);
        feed(fill, blob, 0, peak);
        fill.completion().onComplete(done);
      }));
      filled.add(done.future());
      read.add(tailed.future());
    }
    Future.all(filled).toCompletionStage().toCompletableFuture().get();
    for (int i = 0; i < FILLS; i++) {
      assertThat(store.size(digests.get(i))).isEqualTo(SIZE);
      assertThat(Digest.sha256(Files.readAllBytes(Path.of(store.file(digests.get(i))))))
          .isEqualTo(digests.get(i));
      byte[] hash = read.get(i).toCompletionStage().toCompletableFuture().get();
      assertThat(Digest.finish(Digest.Algorithm.SHA256, hash)).isEqualTo(digests.get(i));
    }
    // Each fill may take one chunk after its last look at the budget, never more.
    assertThat(peak.get()).isLessThanOrEqualTo(BUDGET + (long) FILLS * CHUNK);
    // Every buffer given to the fills went back to the pool once written and read.
    assertThat(given).allSatisfy(chunk -> assertThat(chunk.refCnt()).isZero());
  }

  /** Writes like a pipe does: chunk by chunk, pausing while the fill says its queue is full. */
  private void feed(BlobFill fill, byte[] blob, int offset, AtomicLong peak) {
    int at = offset;
    while (at < blob.length) {
      int n = Math.min(CHUNK, blob.length - at);
      // As upstream's bytes arrive: in pooled memory, which the fill must give back; direct from
      // a plain connection, heap once TLS decrypted them. Both, in turn, go to the same file.
      ByteBuf chunk = (at / CHUNK % 3 == 2 ? ByteBufAllocator.DEFAULT.heapBuffer(n) : ByteBufAllocator.DEFAULT.directBuffer(n))
          .writeBytes(blob, at, n);
      given.add(chunk);
      fill.input().write(chunk);
      peak.accumulateAndGet(store.fillMemoryUsed(), Math::max);
      at += n;
      if (fill.input().full()) {
        int next = at;
        fill.input().onDrain(() -> feed(fill, blob, next, peak));
        return;
      }
    }
    fill.input().end();
  }

  /** Reads the growing blob from start to end as a client would, hashing what it gets. */
  private Future<byte[]> tail(GrowingBlob fill, long position, MessageDigest hash) {
    return fill.available(position).compose(n -> {
      if (n == 0) {
        fill.release();
        return Future.succeededFuture(hash.digest());
      }
      return fill.read(position, (int) Math.min(n, 256 * 1024)).compose(chunk -> {
        int got = chunk.readableBytes();
        hash.update(chunk.nioBuffer());
        chunk.release();
        return tail(fill, position + got, hash);
      });
    });
  }
}
