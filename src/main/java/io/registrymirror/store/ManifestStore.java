package io.registrymirror.store;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.netty.buffer.Unpooled;
import io.registrymirror.log.EventLog;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Optional;

/**
 * Manifests by digest: kept for good on disk, the recently used small ones also in memory so
 * that the hot path (clients re-resolving the same images) never touches the disk.
 *
 * <p>On disk a manifest is its exact bytes under {@code manifests/}, so that the file hashes to
 * its name, and its media type in a file of the same name under {@code manifest-types/}. The
 * type is renamed into place before the body, so a body is never visible without its type; a
 * type without a body is simply a manifest not yet stored. A body that does not hash to its name
 * is treated as absent. Bodies are served from their files; they are read into memory only for
 * a caller that needs the bytes, under the memory budget.
 *
 * <p>Every stored manifest is in the {@link CacheIndex}, which may evict it, and its copy in
 * memory with it.
 *
 * <p>Earlier versions wrote {@code "<media type>\n" + body} into the one file; such a file is
 * migrated the first time it is looked up, if the body in it hashes to its name.
 */
public final class ManifestStore {

  private static final EventLog LOG = EventLog.of(ManifestStore.class);

  /** Thousands of typical manifests; kept small because it lives on the heap. */
  private static final long MEMORY_BYTES = 16L * 1024 * 1024;
  /**
   * Larger manifests are served from their files: each response from memory costs a copy on its
   * way out, and a few large ones would evict thousands of typical ones.
   */
  private static final int MEMORY_MAX_ENTRY = 256 * 1024;
  /** Media types are short; a longer first line is no media type. */
  private static final int MAX_TYPE_BYTES = 255;
  private static final int HASH_CHUNK = 64 * 1024;

  private final Vertx vertx;
  private final CacheLayout layout;
  private final BodyBudget budget;
  private final CacheIndex index;
  private final Cache<Digest, Manifest> memory = Caffeine.newBuilder()
      .maximumWeight(MEMORY_BYTES)
      .weigher((Digest d, Manifest m) -> m.body().length() + 256)
      .build();

  public ManifestStore(Vertx vertx, CacheLayout layout, BodyBudget budget, CacheIndex index) {
    this.vertx = vertx;
    this.layout = layout;
    this.budget = budget;
    this.index = index;
    index.listen(new CacheIndex.Listener() {
      @Override
      public void gone(ContentKey key) {
        if (key.kind() == ContentKey.Kind.MANIFEST) {
          memory.invalidate(key.digest());
        }
      }
    });
  }

  public Future<Void> open() {
    return vertx.executeBlocking(() -> {
      Files.createDirectories(layout.manifests());
      Files.createDirectories(layout.manifestTypes());
      return null;
    });
  }

  /**
   * Indexes the manifests on disk, on a worker, by their files' sizes: whether each still
   * matches its digest is checked when it is looked up.
   */
  public Future<Void> loadIndex() {
    return vertx.executeBlocking(() -> {
      long started = System.nanoTime();
      long found = ContentScan.scan(layout.manifests(), "manifests",
          (digest, size) -> index.put(ContentKey.manifest(digest), size));
      LOG.info("cache.manifests.indexed", "manifests", found, "ms", (System.nanoTime() - started) / 1_000_000);
      return null;
    }, false);
  }

  /** The in-memory copy only: answers without any I/O, or null. */
  public Manifest cached(Digest digest) {
    return hot(digest);
  }

  /**
   * The copy in memory, a use of the cached manifest. A manifest gone from the cache (evicted,
   * deleted, found bad) leaves memory too; one that could not be written to disk stays, to be
   * served from memory.
   */
  private Manifest hot(Digest digest) {
    Manifest m = memory.getIfPresent(digest);
    if (m != null) {
      index.size(ContentKey.manifest(digest));
    }
    return m;
  }

  /**
   * Type and size of a stored manifest, its file verified against its digest without reading
   * it into memory; empty when it is not stored.
   */
  public Future<Optional<Descriptor>> find(Digest digest) {
    Manifest hot = hot(digest);
    if (hot != null) {
      return Future.succeededFuture(Optional.of(hot.descriptor()));
    }
    return vertx.executeBlocking(() -> findOnDisk(digest), false);
  }

  /** Where a stored manifest's exact bytes are, to be sent as a file. */
  public Path file(Digest digest) {
    return layout.manifest(digest);
  }

  /**
   * The manifest's bytes, for a caller that reads them (e.g. to follow its layers): from memory,
   * or read from disk under the memory budget, released once read.
   */
  public Future<Optional<Manifest>> load(Digest digest) {
    Manifest hot = hot(digest);
    if (hot != null) {
      return Future.succeededFuture(Optional.of(hot));
    }
    return find(digest).compose(found -> found.isEmpty()
        ? Future.succeededFuture(Optional.<Manifest>empty())
        : budget.within(found.get().size(), lease -> vertx.executeBlocking(() -> {
          Buffer body = read(file(digest), found.get().size());
          if (!Manifest.hash(digest.algorithm(), body).equals(digest)) {
            return Optional.<Manifest>empty();
          }
          Manifest m = new Manifest(digest, found.get().mediaType(), body);
          remember(m);
          return Optional.of(m);
        }, false)));
  }

  /**
   * Stores a manifest whose body the caller has verified against its digest: its type first,
   * then its body, each renamed into place, replacing whatever was there (a lookup found
   * nothing usable, or the manifest would not have been fetched).
   */
  public Future<Void> put(Manifest m) {
    remember(m);
    ContentKey key = ContentKey.manifest(m.digest());
    return vertx.executeBlocking(() -> {
      synchronized (index.lock(key)) {
        AtomicFiles.write(layout, layout.manifestType(m.digest()),
            (m.mediaType() + "\n").getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(layout, layout.manifest(m.digest()), Manifest.view(m.body()));
        index.put(key, m.body().length());
      }
      return null;
    }, false);
  }

  private void remember(Manifest m) {
    if (m.body().length() <= MEMORY_MAX_ENTRY) {
      memory.put(m.digest(), m);
    }
  }

  // ---- on a worker ----

  private Optional<Descriptor> findOnDisk(Digest digest) throws IOException {
    Path body = layout.manifest(digest);
    String type;
    try {
      type = readType(layout.manifestType(digest));
    } catch (NoSuchFileException e) {
      return migrate(digest, body);
    }
    try (FileChannel channel = FileChannel.open(body, StandardOpenOption.READ)) {
      if (type == null || !digest.equals(hash(digest.algorithm(), channel, 0))) {
        return Optional.empty();
      }
      ContentKey key = ContentKey.manifest(digest);
      index.size(key); // a use of it
      index.found(key, body);
      return Optional.of(new Descriptor(type, digest, channel.size()));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
  }

  /**
   * A manifest file of the earlier format, its type on the first line: when the rest hashes to
   * its name, the type is written beside it, then the body alone replaces the file.
   */
  private Optional<Descriptor> migrate(Digest digest, Path body) throws IOException {
    String type;
    Path tmp = null;
    try (FileChannel old = FileChannel.open(body, StandardOpenOption.READ)) {
      ByteBuffer head = ByteBuffer.allocate(MAX_TYPE_BYTES + 1);
      old.read(head, 0);
      int newline = indexOf(head, (byte) '\n');
      type = newline <= 0 ? "" : MediaTypes.bare(new String(head.array(), 0, newline, StandardCharsets.UTF_8));
      if (type.isEmpty() || !digest.equals(hash(digest.algorithm(), old, newline + 1))) {
        return Optional.empty();
      }
      tmp = Files.createTempFile(layout.tmp(), "manifest-", ".part");
      try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        long size = old.size() - newline - 1;
        for (long done = 0; done < size; ) {
          done += old.transferTo(newline + 1 + done, size - done, out);
        }
        out.force(false);
      }
      AtomicFiles.write(layout, layout.manifestType(digest), (type + "\n").getBytes(StandardCharsets.UTF_8));
      Files.move(tmp, body, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } finally {
      if (tmp != null) {
        Files.deleteIfExists(tmp);
      }
    }
    return findOnDisk(digest);
  }

  /** The file's bytes, into one array of its size, read a chunk at a time (see {@link AtomicFiles#chunk}). */
  private static Buffer read(Path file, long size) throws IOException {
    if (size > Manifest.MAX_SIZE) {
      throw new IOException(file + " is larger than a manifest may be");
    }
    ByteBuffer bytes = ByteBuffer.allocate((int) size);
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      while (bytes.hasRemaining()) {
        int read = channel.read(AtomicFiles.chunk(bytes));
        if (read < 0) {
          throw new IOException(file + " shrank while being read");
        }
        bytes.position(bytes.position() + read);
      }
    }
    return BufferInternal.buffer(Unpooled.wrappedBuffer(bytes.array()));
  }

  /** The type file's one line, or null when it holds no media type. */
  private static String readType(Path file) throws IOException {
    if (Files.size(file) > MAX_TYPE_BYTES + 1) {
      return null;
    }
    String type = MediaTypes.bare(Files.readString(file, StandardCharsets.UTF_8).trim());
    return type.isEmpty() ? null : type;
  }

  /** Hashes the file from {@code offset} to its end, a chunk at a time: never the whole in memory. */
  private static Digest hash(Digest.Algorithm algorithm, FileChannel channel, long offset) throws IOException {
    MessageDigest md = algorithm.newMessageDigest();
    ByteBuffer chunk = ByteBuffer.allocate(HASH_CHUNK);
    long position = offset;
    for (int read; (read = channel.read(chunk, position)) > 0; position += read) {
      chunk.flip();
      md.update(chunk);
      chunk.clear();
    }
    return Digest.finish(algorithm, md.digest());
  }

  private static int indexOf(ByteBuffer filled, byte b) {
    for (int i = 0; i < filled.position(); i++) {
      if (filled.get(i) == b) {
        return i;
      }
    }
    return -1;
  }
}
