package io.registrymirror.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A mirror's cache directory read straight from disk, to check what faults and crashes left in
 * it: content files must hash to the digest their path names, whatever happened.
 */
public final class CacheContents {

  private CacheContents() {
  }

  /** The regular files under {@code dir}, largest first; none if it does not exist. */
  public static List<Path> files(Path dir) {
    for (int attempt = 1; ; attempt++) {
      if (!Files.isDirectory(dir)) {
        return List.of();
      }
      try (Stream<Path> s = Files.walk(dir)) {
        return s.filter(Files::isRegularFile)
            .sorted(Comparator.comparingLong(CacheContents::size).reversed())
            .toList();
      } catch (IOException | UncheckedIOException e) {
        // A running mirror deletes partial files at any moment, even while they are listed.
        if (attempt == 3) {
          throw new IllegalStateException("cannot list " + dir, e);
        }
      }
    }
  }

  /**
   * Every file under {@code blobs/} and {@code manifests/} that does not hash to the digest its
   * path names, or a manifest without its media type under {@code manifest-types/}, described;
   * empty when the cache holds only verified content.
   */
  public static List<String> mismatches(Path cacheDir) {
    List<String> wrong = new ArrayList<>();
    try {
      for (String dir : List.of("blobs", "manifests")) {
        for (Path file : files(cacheDir.resolve(dir))) {
          String actual = ImageSeeder.sha256(file);
          if (!actual.equals(digestNamedBy(file))) {
            wrong.add(file + " (" + size(file) + " bytes) hashes to " + actual);
          }
        }
      }
      Path manifests = cacheDir.resolve("manifests");
      for (Path file : files(manifests)) {
        Path type = cacheDir.resolve("manifest-types").resolve(manifests.relativize(file));
        if (!Files.exists(type) || Files.readString(type).isBlank()) {
          wrong.add(file + " has no media type at " + type);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return wrong;
  }

  /** {@code <alg>/<2 hex>/<hex>} names {@code <alg>:<hex>}. */
  private static String digestNamedBy(Path file) {
    return file.getParent().getParent().getFileName() + ":" + file.getFileName();
  }

  private static long size(Path file) {
    try {
      return Files.size(file);
    } catch (IOException e) {
      // Deleted while listed: a partial file the mirror has just dropped.
      return 0;
    }
  }
}
