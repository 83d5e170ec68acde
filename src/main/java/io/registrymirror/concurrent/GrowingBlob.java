package io.registrymirror.concurrent;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vertx.core.Future;
import java.io.IOException;
import java.nio.channels.FileChannel;

/**
 * One reader's hold on a blob that is still being written: what can be read, the bytes, a wait
 * for more, and whether the whole blob has been verified or has failed. The last byte becomes
 * available only once the blob is verified. The holder calls {@link #release()} once done; until
 * then the bytes stay readable.
 */
public interface GrowingBlob {

  /** The length the blob is expected to have, or -1 when it is not known. */
  long expectedSize();

  /** Whether the blob's length and digest have been checked: everything written is readable. */
  boolean isVerified();

  /**
   * How many bytes can be read at {@code position}, waiting until there is at least one.
   * Succeeds with 0 at the end of a verified blob; fails if the blob failed.
   */
  Future<Long> available(long position);

  /**
   * Completes, on the caller's context, at the next progress or change of state; at once if
   * the blob is complete. Fails if it failed.
   */
  Future<Void> awaitChange();

  /**
   * Up to {@code max} bytes at {@code position}; {@link #available} must have said there are
   * some. The caller releases the buffer once it is written.
   */
  Future<ByteBuf> read(long position, int max);

  /** Gives up this hold; further calls do nothing. */
  void release();

  /**
   * {@code n} bytes of {@code file} at {@code position}, into pooled direct memory that the
   * socket takes without another copy, from the pool Netty and Vert.x use for the sockets (a
   * pool of its own would hold chunks of its own). Blocking: for workers. The caller releases
   * the buffer.
   */
  static ByteBuf read(FileChannel file, long position, int n) throws IOException {
    ByteBuf dst = ByteBufAllocator.DEFAULT.directBuffer(n);
    try {
      while (dst.writerIndex() < n) {
        if (dst.writeBytes(file, position + dst.writerIndex(), n - dst.writerIndex()) < 0) {
          throw new IOException("file shorter than the bytes asked for");
        }
      }
      return dst;
    } catch (IOException | RuntimeException e) {
      dst.release();
      throw e;
    }
  }
}
