package io.registrymirror.store;

import io.netty.buffer.ByteBufAllocator;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The tee without the network: a 64 MiB blob arrives in 64 KiB chunks (each copied into a heap
 * buffer of its own, as the HTTP client hands them over), is hashed and written to a cache file
 * and read by {@link Readers#count} clients at once, and is verified and installed. One operation
 * is one blob, so 64 MiB divided by the time per operation is the fill's throughput.
 *
 * <p>{@link #hashAndWrite} is the floor: the same bytes hashed and written to a file by one
 * thread, with nothing else going on.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 10, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx512m", "-XX:MaxDirectMemorySize=256m"})
public class BlobFillBenchmark {

  private static final int SIZE = 64 << 20;
  private static final int CHUNK = 64 << 10;
  private static final int READ = 256 << 10;

  /** How many clients read the blob while it fills. */
  @State(Scope.Benchmark)
  public static class Readers {
    @Param({"1", "4"})
    public int count;
  }

  private byte[] blob;
  private Digest digest;
  private Path dir;
  private Vertx vertx;
  private BlobStore store;

  @Setup
  public void setUp() throws Exception {
    blob = new byte[SIZE];
    new Random(42).nextBytes(blob);
    digest = Digest.sha256(blob);
    dir = Files.createTempDirectory("blobfill-bench");
    vertx = Vertx.vertx();
    CacheLayout layout = new CacheLayout(dir);
    store = new BlobStore(vertx, layout, new CacheIndex(vertx, layout, null, 0));
    store.open().toCompletionStage().toCompletableFuture().get();
  }

  @TearDown
  public void tearDown() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
    }
  }

  /** Each operation fills the blob anew. */
  @TearDown(Level.Invocation)
  public void forget() throws IOException {
    store.forget(digest);
    Files.deleteIfExists(Path.of(store.file(digest)));
  }

  @Benchmark
  public long fill(Readers readers) throws Exception {
    CompletableFuture<Long> done = new CompletableFuture<>();
    vertx.runOnContext(v -> store.create(digest).onComplete(created -> {
      if (created.failed()) {
        done.completeExceptionally(created.cause());
        return;
      }
      BlobFill fill = created.result();
      fill.expect(SIZE);
      List<Future<Long>> read = new ArrayList<>();
      for (int i = 0; i < readers.count; i++) {
        read.add(readAll(fill.open()));
      }
      write(fill.input(), 0);
      Future.all(read).compose(all -> fill.completion()).onComplete(r -> {
        if (r.succeeded()) {
          done.complete((long) read.get(0).result());
        } else {
          done.completeExceptionally(r.cause());
        }
      });
    }));
    return done.get(60, TimeUnit.SECONDS);
  }

  /**
   * Writes from {@code offset} as fast as the fill takes it, as upstream's connection would: each
   * chunk in pooled direct memory (the copy into it stands for the socket read).
   */
  private void write(BodySink fill, int offset) {
    int at = offset;
    while (at < SIZE && !fill.full()) {
      fill.write(ByteBufAllocator.DEFAULT.directBuffer(CHUNK).writeBytes(blob, at, CHUNK));
      at += CHUNK;
    }
    if (at == SIZE) {
      fill.end();
    } else {
      int next = at;
      fill.onDrain(() -> write(fill, next));
    }
  }

  /** Reads the whole blob as one client would, chunk after chunk; completes with the bytes read. */
  private static Future<Long> readAll(GrowingBlob blob) {
    Promise<Long> promise = Promise.promise();
    readFrom(blob, 0, promise);
    return promise.future().andThen(r -> blob.release());
  }

  private static void readFrom(GrowingBlob fill, long position, Promise<Long> promise) {
    fill.available(position).onComplete(available -> {
      if (available.failed()) {
        promise.fail(available.cause());
      } else if (available.result() == 0) {
        promise.complete(position);
      } else {
        fill.read(position, READ).onComplete(chunk -> {
          if (chunk.failed()) {
            promise.fail(chunk.cause());
            return;
          }
          int n = chunk.result().readableBytes();
          chunk.result().release();
          readFrom(fill, position + n, promise);
        });
      }
    });
  }

  @Benchmark
  public byte[] hashAndWrite() throws Exception {
    Path file = Files.createTempFile(dir, "floor-", ".part");
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
      MessageDigest hash = digest.algorithm().newMessageDigest();
      for (int at = 0; at < SIZE; at += CHUNK) {
        ByteBuffer chunk = ByteBuffer.wrap(blob, at, CHUNK);
        hash.update(chunk.duplicate());
        while (chunk.hasRemaining()) {
          channel.write(chunk);
        }
      }
      channel.force(false);
      return hash.digest();
    } finally {
      Files.delete(file);
    }
  }
}
