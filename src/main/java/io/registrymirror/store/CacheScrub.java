package io.registrymirror.store;

import io.registrymirror.oci.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * One pass over the cache that hashes every blob and manifest again and removes what no longer
 * matches the digest its path names: bits rotted on the disk, a file truncated or edited by hand,
 * anything left there that is no digest's path. A manifest goes with its media type; a blob
 * removed is forgotten by the running index, so that the next request fetches it again.
 *
 * <p>Blocking, one file at a time, a chunk at a time: run it on a worker (or on a command line's
 * own thread). Files being written are in {@code tmp/}, which it never looks at; a file that goes
 * away while it is looked at (evicted, deleted by hand) is skipped; a file replaced meanwhile (by
 * a fresh, verified copy under the same name) is left alone.
 */
public final class CacheScrub {

  /** Read size: large enough that hashing, not system calls, sets the pace. */
  private static final int CHUNK = 256 * 1024;
  /** How often a large file's progress is reported while it is hashed. */
  private static final long PROGRESS_EVERY = 1024 * 1024;
  /** Longer than any media type line of the earlier manifest format. */
  private static final int MAX_TYPE_LINE = 256;

  private final CacheLayout layout;
  private final Consumer<ContentKey> forget;
  private final ScrubWatcher watcher;
  /** Direct, so that the channel reads into it without a copy; one per scrub, on its one thread. */
  private final ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK);
  private volatile boolean stopping;

  private long started;
  private long filesTotal;
  private long bytesTotal;
  private long files;
  private long bytes;
  private long removed;
  private long removedBytes;
  private long failed;

  /**
   * @param forget told of each blob and manifest removed, e.g. the running mirror's index
   * @param watcher told of progress, removals and failures, on the scrubbing thread
   */
  public CacheScrub(CacheLayout layout, Consumer<ContentKey> forget, ScrubWatcher watcher) {
    this.layout = layout;
    this.forget = forget;
    this.watcher = watcher;
  }

  /** Asks a running scrub to stop after the chunk it is reading; what it checked stays checked. */
  public void stop() {
    stopping = true;
  }

  public boolean stopped() {
    return stopping;
  }

  /**
   * Scrubs the whole cache and returns the summary.
   *
   * @throws IOException when the cache directory is missing, no directory, or cannot be read
   */
  public ScrubProgress run() throws IOException {
    usable(layout.root());
    started = System.nanoTime();
    List<Path> areas = List.of(layout.blobs(), layout.manifests(), layout.manifestTypes());
    for (Path area : areas) {
      walk(area, (file, attrs) -> {
        filesTotal++;
        bytesTotal += attrs.size();
      }, false);
    }
    // Manifests before their types: a type whose manifest is removed goes with it.
    walk(layout.blobs(), this::checkBlob, true);
    walk(layout.manifests(), this::checkManifest, true);
    walk(layout.manifestTypes(), this::checkType, true);
    ScrubProgress summary = snapshot();
    watcher.progress(summary);
    return summary;
  }

  private static void usable(Path root) throws IOException {
    if (!Files.exists(root)) {
      throw new NoSuchFileException(root.toString(), null, "no such directory");
    }
    if (!Files.isDirectory(root)) {
      throw new NotDirectoryException(root.toString());
    }
    if (!Files.isReadable(root) || !Files.isExecutable(root)) {
      throw new AccessDeniedException(root.toString(), null, "cannot be read");
    }
  }

  private ScrubProgress snapshot() {
    return new ScrubProgress(filesTotal, bytesTotal, files, bytes, removed, removedBytes, failed,
        System.nanoTime() - started);
  }

  private void walk(Path area, BiConsumer<Path, BasicFileAttributes> check, boolean report) throws IOException {
    if (!Files.isDirectory(area, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(area, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
        return stopping ? FileVisitResult.TERMINATE : FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
        if (stopping) {
          return FileVisitResult.TERMINATE;
        }
        check.accept(file, attrs);
        if (report) {
          watcher.progress(snapshot());
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) {
        // Gone since its directory was listed: evicted or deleted by hand, nothing to check.
        if (report && !(e instanceof NoSuchFileException)) {
          fail(file, e);
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path dir, IOException e) {
        if (e != null && report && !(e instanceof NoSuchFileException)) {
          fail(dir, e);
        }
        return FileVisitResult.CONTINUE;
      }
    });
  }

  private void checkBlob(Path file, BasicFileAttributes attrs) {
    Digest digest = named(file, attrs, layout::blob);
    if (digest == null) {
      stray(file, attrs);
      return;
    }
    Digest actual = hash(file, digest.algorithm(), 0, true);
    if (actual != null && !actual.equals(digest)
        && remove("blob", file, attrs, "does not match its digest " + digest)) {
      forget.accept(ContentKey.blob(digest));
    }
  }

  /**
   * A body must hash to its name and have its media type beside it. A body of the earlier format
   * (its type on the first line) is left for {@link ManifestStore} to convert when it is looked up.
   */
  private void checkManifest(Path file, BasicFileAttributes attrs) {
    Digest digest = named(file, attrs, layout::manifest);
    if (digest == null) {
      stray(file, attrs);
      return;
    }
    Digest actual = hash(file, digest.algorithm(), 0, true);
    if (actual == null) {
      return;
    }
    Path type = layout.manifestType(digest);
    boolean typed = Files.exists(type, LinkOption.NOFOLLOW_LINKS);
    if (actual.equals(digest)) {
      if (!typed && remove("manifest", file, attrs, "has no media type")) {
        forget.accept(ContentKey.manifest(digest));
      }
      return;
    }
    if (!typed && earlierFormat(file, digest)) {
      return;
    }
    // The body first: a body is never left without its type, as ManifestStore writes them.
    if (!remove("manifest", file, attrs, "does not match its digest " + digest)) {
      return;
    }
    forget.accept(ContentKey.manifest(digest));
    if (typed) {
      files++;
      try {
        BasicFileAttributes typeAttrs = Files.readAttributes(type, BasicFileAttributes.class,
            LinkOption.NOFOLLOW_LINKS);
        bytes += typeAttrs.size();
        remove("manifest", type, typeAttrs, "is the media type of a removed manifest");
      } catch (NoSuchFileException gone) {
        // removed meanwhile
      } catch (IOException e) {
        fail(type, e);
      }
    }
  }

  /**
   * A media type needs no hashing, only a digest's name; one without its manifest is left alone:
   * {@link ManifestStore} writes the type first, so that is a manifest being stored.
   */
  private void checkType(Path file, BasicFileAttributes attrs) {
    if (named(file, attrs, layout::manifestType) == null) {
      stray(file, attrs);
      return;
    }
    files++;
    bytes += attrs.size();
  }

  private void stray(Path file, BasicFileAttributes attrs) {
    files++;
    bytes += attrs.size();
    remove("stray", file, attrs, "is no digest's path");
  }

  /** The digest a regular file's path names ({@code <alg>/<2 hex>/<hex>}), or null. */
  private static Digest named(Path file, BasicFileAttributes attrs, Function<Digest, Path> layoutPath) {
    Path shard = file.getParent();
    Path alg = shard == null ? null : shard.getParent();
    if (!attrs.isRegularFile() || alg == null) {
      return null;
    }
    Digest digest = Digest.parseOrNull(alg.getFileName() + ":" + file.getFileName());
    return digest != null && layoutPath.apply(digest).equals(file) ? digest : null;
  }

  /**
   * The file's digest from {@code offset} to its end; null when it went away or the scrub is
   * stopping, or when it could not be read (reported as a failure).
   */
  private Digest hash(Path file, Digest.Algorithm algorithm, long offset, boolean counted) {
    MessageDigest md = algorithm.newMessageDigest();
    long sinceProgress = 0;
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long position = offset;
      chunk.clear();
      for (int read; (read = channel.read(chunk, position)) >= 0; ) {
        chunk.flip();
        md.update(chunk);
        chunk.clear();
        position += read;
        if (stopping) {
          return null;
        }
        if (counted) {
          bytes += read;
          sinceProgress += read;
          if (sinceProgress >= PROGRESS_EVERY) {
            sinceProgress = 0;
            watcher.progress(snapshot());
          }
        }
      }
    } catch (NoSuchFileException gone) {
      return null;
    } catch (IOException e) {
      fail(file, e);
      return null;
    } finally {
      if (counted) {
        files++;
      }
    }
    return Digest.finish(algorithm, md.digest());
  }

  /** Whether the file is a manifest of the earlier format: a media type line, then the body. */
  private boolean earlierFormat(Path file, Digest digest) {
    byte[] head = new byte[MAX_TYPE_LINE];
    int length;
    try (InputStream in = Files.newInputStream(file)) {
      length = in.readNBytes(head, 0, head.length);
    } catch (IOException e) {
      return false;
    }
    for (int i = 1; i < length; i++) {
      if (head[i] == '\n') {
        return digest.equals(hash(file, digest.algorithm(), i + 1, false));
      }
    }
    return false;
  }

  /**
   * Removes a file if it is still the one that was checked; false when it went away, was
   * replaced (a fill or a fetch installed a verified copy under the same name), or cannot be
   * removed (reported as a failure).
   */
  private boolean remove(String kind, Path file, BasicFileAttributes checked, String reason) {
    try {
      Object now = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
      if (checked.fileKey() != null && !checked.fileKey().equals(now)) {
        return false;
      }
      Files.delete(file);
    } catch (NoSuchFileException gone) {
      return false;
    } catch (IOException e) {
      fail(file, e);
      return false;
    }
    removed++;
    removedBytes += checked.size();
    watcher.removed(kind, file, checked.size(), reason);
    return true;
  }

  private void fail(Path file, IOException e) {
    failed++;
    watcher.failed(file, e);
  }
}
