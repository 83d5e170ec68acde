package io.registrymirror.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes small files so that they appear whole or not at all, even across a crash: written
 * under the cache's {@code tmp/}, flushed to disk, then renamed into place. Blocking: call it
 * from a worker.
 */
public final class AtomicFiles {

  /**
   * The JDK writes a heap buffer through a direct buffer of the same size, cached per thread:
   * whole 4 MiB manifests from a pool of workers would exhaust direct memory.
   */
  private static final int CHUNK = 64 * 1024;

  private AtomicFiles() {}

  /** At most {@link #CHUNK} bytes from {@code bytes}'s position, sharing its content. */
  public static ByteBuffer chunk(ByteBuffer bytes) {
    ByteBuffer slice = bytes.slice();
    return slice.limit(Math.min(slice.remaining(), CHUNK));
  }

  public static void write(CacheLayout layout, Path target, byte[] content) throws IOException {
    write(layout, target, ByteBuffer.wrap(content));
  }

  /** Writes the bytes between {@code content}'s position and limit, e.g. a view of a buffer. */
  public static void write(CacheLayout layout, Path target, ByteBuffer content) throws IOException {
    Files.createDirectories(target.getParent());
    Path tmp = Files.createTempFile(layout.tmp(), "write-", ".part");
    try {
      try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer bytes = content.duplicate();
        while (bytes.hasRemaining()) {
          bytes.position(bytes.position() + channel.write(chunk(bytes)));
        }
        channel.force(false);
      }
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
  }
}
