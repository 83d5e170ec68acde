package io.registrymirror.store;

import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ObjLongConsumer;

/**
 * Lists the content files under {@code blobs/} or {@code manifests/} with their sizes, for the
 * index at start-up: {@code <alg>/<2 hex>/<hex>}, anything else is reported as stray. The
 * prefix directories are read by a few threads at once: on a cold disk most of the time is
 * waiting for directory and inode reads, which several threads keep the disk busy with.
 * Blocking: call it on a worker.
 */
final class ContentScan {

  private static final EventLog LOG = EventLog.of(ContentScan.class);
  private static final int THREADS = 4;
  private static final long PROGRESS_EVERY = 20_000;

  private ContentScan() {}

  /**
   * Calls {@code found} for each content file, from several threads at once.
   *
   * @return how many files were found
   */
  static long scan(Path root, String what, ObjLongConsumer<Digest> found) throws Exception {
    List<Path> prefixes = new ArrayList<>();
    if (!Files.isDirectory(root)) {
      return 0;
    }
    try (DirectoryStream<Path> algorithms = Files.newDirectoryStream(root)) {
      for (Path algorithm : algorithms) {
        if (!Files.isDirectory(algorithm, LinkOption.NOFOLLOW_LINKS)) {
          LOG.warn("cache.stray", "path", algorithm);
          continue;
        }
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(algorithm)) {
          dirs.forEach(prefixes::add);
        }
      }
    }
    AtomicLong count = new AtomicLong();
    ExecutorService threads = Executors.newFixedThreadPool(THREADS, r -> {
      Thread t = new Thread(r, "registry-mirror-index");
      t.setDaemon(true);
      return t;
    });
    try {
      List<Future<?>> done = new ArrayList<>();
      for (Path prefix : prefixes) {
        done.add(threads.submit(() -> {
          scanPrefix(prefix, what, found, count);
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      threads.shutdownNow();
    }
    return count.get();
  }

  private static void scanPrefix(Path prefix, String what, ObjLongConsumer<Digest> found, AtomicLong count)
      throws IOException {
    String name = prefix.getFileName().toString();
    if (!Files.isDirectory(prefix, LinkOption.NOFOLLOW_LINKS)) {
      LOG.warn("cache.stray", "path", prefix);
      return;
    }
    String algorithm = prefix.getParent().getFileName().toString();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(prefix)) {
      for (Path file : files) {
        String hex = file.getFileName().toString();
        Digest d = hex.startsWith(name) && name.length() == 2 ? Digest.parseOrNull(algorithm + ":" + hex) : null;
        BasicFileAttributes attributes;
        try {
          attributes = d == null ? null : Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
          continue; // deleted since the directory was read
        }
        if (attributes == null || !attributes.isRegularFile()) {
          LOG.warn("cache.stray", "path", file);
          continue;
        }
        found.accept(d, attributes.size());
        if (count.incrementAndGet() % PROGRESS_EVERY == 0) {
          LOG.info("cache.index.progress", what, count.get());
        }
      }
    }
  }
}
