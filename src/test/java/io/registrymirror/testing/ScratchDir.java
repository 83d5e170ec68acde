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
 * A temporary directory for a client's stores that {@link #close()} leaves no trace of: it first
 * unmounts whatever a daemon mounted beneath it (dockerd bind-mounts its data root, snapshotters
 * mount layers), then deletes it, so that a killed daemon cannot leave the disk busy.
 */
public final class ScratchDir implements AutoCloseable {

  private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

  private final Path dir;

  private ScratchDir(Path dir) {
    this.dir = dir;
  }

  public static ScratchDir create(String prefix) throws IOException {
    // Under /tmp, not java.io.tmpdir: the daemons' sockets need short paths (108 bytes at most).
    return new ScratchDir(Files.createTempDirectory(Path.of("/tmp"), prefix).toRealPath());
  }

  public Path path() {
    return dir;
  }

  /** A directory beneath this one, created if missing. */
  public Path dir(String name) throws IOException {
    return Files.createDirectories(dir.resolve(name));
  }

  @Override
  public void close() {
    unmountBeneath(dir);
    delete(dir);
  }

  /** Unmounts every mount point at or below {@code root}, deepest first. */
  static void unmountBeneath(Path root) {
    List<Path> mounts = new ArrayList<>();
    try {
      for (String line : Files.readAllLines(MOUNTINFO)) {
        // Field 5 is the mount point, with space, tab, newline and backslash written in octal.
        Path point = Path.of(unescape(line.split(" ")[4]));
        if (point.startsWith(root)) {
          mounts.add(point);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    mounts.sort(Comparator.comparingInt(Path::getNameCount).reversed());
    for (Path point : mounts) {
      // Lazy: a mount still busy for a moment is detached now and released when it is free.
      Exec.quietly(List.of("umount", "-l", point.toString()));
    }
  }

  static void delete(Path root) {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String unescape(String field) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < field.length(); i++) {
      char c = field.charAt(i);
      if (c == '\\' && i + 3 < field.length()) {
        out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }
}
