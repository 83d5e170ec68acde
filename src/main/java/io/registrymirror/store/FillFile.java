package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.concurrent.RejectedExecutionException;

/**
 * A fill's temporary file and the hash of what was appended to it. Every method here but
 * {@link #close} blocks: a fill calls them on a worker, one append at a time, while reads may
 * run alongside.
 */
final class FillFile {

  /**
   * Where a worker gathers heap chunks (upstream's bytes over TLS) for the disk: the JDK would
   * copy each into a direct buffer anyway, and a few large writes cost the kernel less than one
   * per chunk. One per worker thread that has flushed, so at most a few MiB for the whole pool.
   */
  private static final ThreadLocal<ByteBuffer> STAGING =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(256 * 1024));

  private final Path path;
  private final FileChannel channel;
  private final MessageDigest hash;

  FillFile(Path path, FileChannel channel, Digest.Algorithm algorithm) {
    this.path = path;
    this.channel = channel;
    this.hash = algorithm.newMessageDigest();
  }

  Path path() {
    return path;
  }

  FileChannel channel() {
    return channel;
  }

  /**
   * Hashes and appends a batch of chunks; returns how many bytes it held. The hash takes the
   * whole batch first, so that the fill can go on without the file if the disk fails partway.
   * Direct chunks go to the file as they are, in gathering writes; heap chunks through a
   * direct staging buffer.
   */
  long append(ByteBuffer[] batch) throws IOException {
    long total = hash(batch);
    ByteBuffer staging = STAGING.get();
    try {
      int from = 0;
      for (int i = 0; i <= batch.length; i++) {
        if (i < batch.length && batch[i].isDirect()) {
          continue;
        }
        // batch[from, i) is a run of direct chunks, and what is staged comes before it.
        writeOut(staging);
        writeOut(batch, from, i);
        if (i < batch.length) {
          stage(batch[i], staging);
        }
        from = i + 1;
      }
      writeOut(staging);
    } finally {
      staging.clear(); // a failed write leaves nothing behind for this thread's next fill
    }
    return total;
  }

  /** Copies a heap chunk into the staging buffer, writing the buffer out each time it is full. */
  private void stage(ByteBuffer chunk, ByteBuffer staging) throws IOException {
    ByteBuffer b = chunk.duplicate();
    while (b.hasRemaining()) {
      int n = Math.min(b.remaining(), staging.remaining());
      staging.put(b.slice(b.position(), n));
      b.position(b.position() + n);
      if (!staging.hasRemaining()) {
        writeOut(staging);
      }
    }
  }

  /** Writes {@code batch[from, to)}, direct chunks, in as few calls as the kernel takes. */
  private void writeOut(ByteBuffer[] batch, int from, int to) throws IOException {
    if (from >= to) {
      return;
    }
    ByteBuffer[] views = new ByteBuffer[to - from];
    long left = 0;
    for (int i = from; i < to; i++) {
      views[i - from] = batch[i].duplicate();
      left += views[i - from].remaining();
    }
    while (left > 0) {
      left -= channel.write(views);
    }
  }

  /** Hashes a batch without writing it, for a fill whose disk has failed; returns its length. */
  long hash(ByteBuffer[] batch) {
    long total = 0;
    for (ByteBuffer b : batch) {
      total += b.remaining();
      hash.update(b.duplicate());
    }
    return total;
  }

  private void writeOut(ByteBuffer staging) throws IOException {
    if (staging.position() == 0) {
      return;
    }
    staging.flip();
    while (staging.hasRemaining()) {
      channel.write(staging);
    }
    staging.clear();
  }

  /** The digest of everything appended; once, after the last append. */
  byte[] hash() {
    return hash.digest();
  }

  /** {@code n} bytes at {@code position}, all written before; the caller releases the buffer. */
  ByteBuf read(long position, int n) throws IOException {
    return GrowingBlob.read(channel, position, n);
  }

  /** Closes the file on a worker; here, if Vert.x is shutting down and its workers are gone. */
  Future<Void> close(Vertx vertx) {
    try {
      return vertx.executeBlocking(() -> {
        channel.close();
        return null;
      }, false);
    } catch (RejectedExecutionException e) {
      try {
        channel.close();
      } catch (IOException ignored) {
        // nothing was written through this handle that is still needed
      }
      return Future.succeededFuture();
    }
  }
}
