package io.registrymirror.store;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.netty.util.internal.PlatformDependent;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The digest-addressed blob cache on disk, with an in-memory index of what it holds
 * ({@link CacheIndex}) so that a hit costs no file-system call before the blob is opened. A file
 * removed by hand is found missing when a GET opens it or a HEAD looks for it, and is then
 * forgotten and fetched again.
 *
 * <p>The index is read from disk in the background after start-up: until it is complete, a
 * blob it does not know yet is looked for on disk ({@link #probe}) before it counts as a miss.
 */
public final class BlobStore {

  private static final EventLog LOG = EventLog.of(BlobStore.class);

  private final Vertx vertx;
  private final CacheLayout layout;
  private final CacheIndex index;
  private volatile boolean loaded;
  /** Blobs whose file was found in the last second, so that HEADs need not look again. */
  private final Cache<Digest, Boolean> seen = Caffeine.newBuilder()
      .expireAfterWrite(Duration.ofSeconds(1)).maximumSize(10_000).build();
  private final FillMemory memory;
  private final AtomicLong diskFree = new AtomicLong(-1);
  private final AtomicLong diskSize = new AtomicLong(-1);

  /**
   * Gives blobs on their way to disk, all fills together, a quarter of the heap or of the direct
   * memory, whichever is less: they stay in the buffers they arrived in, direct ones on a plain
   * connection, heap ones over TLS.
   */
  public BlobStore(Vertx vertx, CacheLayout layout, CacheIndex index) {
    this(vertx, layout, index, Math.min(Runtime.getRuntime().maxMemory(), PlatformDependent.maxDirectMemory()) / 4);
  }

  BlobStore(Vertx vertx, CacheLayout layout, CacheIndex index, long fillMemory) {
    this.vertx = vertx;
    this.layout = layout;
    this.index = index;
    this.memory = new FillMemory(fillMemory);
  }

  /**
   * Reads, on a worker, how much room the cache's file system has left: the gauges report the
   * last reading, so that a scrape never waits on the disk. A cache that fills its disk fails
   * its fills, and operators need to see it coming.
   */
  public Future<Void> checkDisk() {
    return vertx.executeBlocking(() -> {
      FileStore store = Files.getFileStore(layout.root());
      diskSize.set(store.getTotalSpace());
      diskFree.set(store.getUsableSpace());
      return null;
    }, false);
  }

  /** Bytes the cache's file system has left, as last read; -1 before the first reading. */
  public long diskFree() {
    return diskFree.get();
  }

  /** The size of the cache's file system in bytes, as last read; -1 before the first reading. */
  public long diskSize() {
    return diskSize.get();
  }

  /** Bytes of blobs held in memory on their way to disk, all fills together. */
  public long fillMemoryUsed() {
    return memory.used();
  }

  /**
   * Prepares the directories and deletes what an earlier run left half-written, on a worker. The
   * blobs present are indexed afterwards, by {@link #loadIndex}.
   */
  public Future<Void> open() {
    return vertx.executeBlocking(() -> {
      Files.createDirectories(layout.blobs());
      Files.createDirectories(layout.tmp());
      int removed = 0;
      try (DirectoryStream<Path> leftovers = Files.newDirectoryStream(layout.tmp())) {
        for (Path p : leftovers) {
          Files.deleteIfExists(p);
          removed++;
        }
      }
      if (removed > 0) {
        LOG.info("cache.tmp.cleaned", "files", removed);
      }
      return null;
    });
  }

  /**
   * Indexes the blobs on disk, on a worker, saying how far it got now and then: a cache of a
   * hundred thousand blobs takes a second or two, during which the mirror already serves.
   */
  public Future<Void> loadIndex() {
    return vertx.executeBlocking(() -> {
      long started = System.nanoTime();
      AtomicLong bytes = new AtomicLong();
      long blobs = ContentScan.scan(layout.blobs(), "blobs", (digest, size) -> {
        index.put(ContentKey.blob(digest), size);
        bytes.addAndGet(size);
      });
      loaded = true;
      LOG.info("cache.indexed", "blobs", blobs, "bytes", bytes.get(),
          "ms", (System.nanoTime() - started) / 1_000_000);
      return null;
    }, false);
  }

  /** Whether the index has been read from disk, so that a blob it does not know is not cached. */
  public boolean loaded() {
    return loaded;
  }

  /**
   * Looks for a blob on disk that the index, still loading, may not know yet, and indexes it
   * if it is there. Once the index is loaded it knows everything, and this does nothing.
   */
  public Future<Void> probe(Digest digest) {
    ContentKey key = ContentKey.blob(digest);
    if (loaded || index.contains(key)) {
      return Future.succeededFuture();
    }
    Path path = layout.blob(digest);
    return vertx.executeBlocking(() -> {
      index.found(key, path);
      return null;
    }, false).<Void>mapEmpty().recover(e -> Future.succeededFuture());
  }

  /** The size of a cached blob, or null when it is not cached. */
  public Long size(Digest digest) {
    return index.size(ContentKey.blob(digest));
  }

  /**
   * The size of a cached blob, whose file is then not deleted by an eviction until
   * {@link #release}; null when it is not cached.
   */
  public Long hold(Digest digest) {
    return index.hold(ContentKey.blob(digest));
  }

  public void release(Digest digest) {
    index.release(ContentKey.blob(digest));
  }

  public String file(Digest digest) {
    return layout.blob(digest).toString();
  }

  /**
   * Whether a cached blob's file is still there, looked at on a worker at most once a second per
   * blob: a client's HEADs come in bursts, and a trip to a worker for each would halve the rate
   * of HEADs served. A file removed by hand is therefore seen within a second.
   */
  public Future<Boolean> present(Digest digest) {
    if (seen.getIfPresent(digest) != null) {
      return Future.succeededFuture(true);
    }
    Path path = layout.blob(digest);
    return vertx.executeBlocking(() -> Files.exists(path), false).onSuccess(there -> {
      if (there) {
        seen.put(digest, Boolean.TRUE);
      }
    });
  }

  /** Forgets a blob whose file has disappeared, so that the next request fetches it again. */
  public void forget(Digest digest) {
    index.remove(ContentKey.blob(digest));
    seen.invalidate(digest);
  }

  /**
   * Starts writing a blob: an empty temporary file, to be filled, verified and installed by the
   * returned fill, whose writer context is the caller's.
   */
  public Future<BlobFill> create(Digest digest) {
    return create(digest, true);
  }

  /**
   * Starts writing a blob that is installed only if {@code keep}: otherwise it is verified, read
   * by the readers it has, and deleted (a copy for one round of clients, of a blob another
   * replica stores).
   */
  public Future<BlobFill> create(Digest digest, boolean keep) {
    Context writer = vertx.getOrCreateContext();
    return vertx.executeBlocking(() -> {
      Path tmp = Files.createTempFile(layout.tmp(), digest.hex().substring(0, 12) + "-", ".part");
      FileChannel channel = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE);
      return new BlobFill(vertx, writer, this, memory, digest, tmp, channel, keep);
    });
  }

  /**
   * Makes a verified file visible under its digest: flushed to disk first, then renamed, and
   * indexed under the same lock as an eviction's deletion.
   */
  Future<Void> install(Path tmp, FileChannel channel, Digest digest, long size) {
    return vertx.executeBlocking(() -> {
      channel.force(false);
      Path target = layout.blob(digest);
      Files.createDirectories(target.getParent());
      ContentKey key = ContentKey.blob(digest);
      synchronized (index.lock(key)) {
        try {
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          throw new IOException("cache tmp and blobs must be on one file system", e);
        }
        index.put(key, size);
      }
      return null;
    }, false);
  }

  void discard(Path tmp) {
    vertx.executeBlocking(() -> Files.deleteIfExists(tmp), false)
        .onFailure(e -> LOG.warn("cache.tmp.leak", "path", tmp, "error", e));
  }
}
