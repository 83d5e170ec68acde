package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.error.OciError;
import io.registrymirror.oci.Digest;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.streams.WriteStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;

/**
 * A blob being written into the cache, readable by any number of clients while it grows.
 *
 * <p>The upstream body is piped in as a {@link WriteStream}: bytes are hashed and appended to a
 * temporary file on a worker thread in batches, so the event loop only queues buffers. Readers
 * tail the same file at their own pace with positional reads, so a slow client slows neither the
 * fill nor other clients, and a client that goes away does not stop the fill.
 *
 * <p>The last byte is held back from every reader until the digest and length are verified: a
 * truncated or corrupt upstream body can therefore never be received as complete. Only a
 * verified file is renamed to its digest path; anything else is deleted.
 *
 * <p>The write side runs on the context of the request that started the fill; readers may be on
 * any event loop, so the state they share is guarded by this object's lock.
 */
public final class BlobFill implements WriteStream<Buffer> {

  /** Bytes queued for the disk before the upstream is paused: the per-fill memory bound. */
  private static final long HIGH_WATER = 8L * 1024 * 1024;

  private enum State { FILLING, VERIFIED, COMMITTED, FAILED }

  private record Waiter(Context context, Promise<Void> promise) {}

  private final Vertx vertx;
  private final BlobStore store;
  private final Digest digest;
  private final long expectedSize;
  private final Path tmp;
  private final FileChannel channel;
  private final MessageDigest hash;
  private final Promise<Void> done = Promise.promise();

  // Write side, confined to the writer's context.
  private final ArrayDeque<Buffer> pending = new ArrayDeque<>();
  private long queuedBytes;
  private boolean flushing;
  private boolean ended;
  private Handler<Void> drainHandler;

  // Shared with readers, guarded by this.
  private long written;
  private State state = State.FILLING;
  private Throwable failure;
  private int refs = 1; // the writer's own reference
  private final List<Waiter> waiters = new ArrayList<>();

  BlobFill(Vertx vertx, BlobStore store, Digest digest, long expectedSize, Path tmp, FileChannel channel) {
    this.vertx = vertx;
    this.store = store;
    this.digest = digest;
    this.expectedSize = expectedSize;
    this.tmp = tmp;
    this.channel = channel;
    this.hash = digest.algorithm().newMessageDigest();
  }

  public Digest digest() {
    return digest;
  }

  /** The length upstream announced, or -1 when it sent none. */
  public long expectedSize() {
    return expectedSize;
  }

  /** Bytes written so far; the blob's size once the fill is complete. */
  public synchronized long written() {
    return written;
  }

  /** Completes once the blob is verified and in the cache; fails when the fill fails. */
  public Future<Void> completion() {
    return done.future();
  }

  // ---- reading ----

  /**
   * Takes a reference for a reader, keeping the file open until {@link #release()}.
   *
   * @return false when the fill has already finished and closed its file, in which case the
   *     blob is either in the store or gone
   */
  public synchronized boolean retain() {
    if (refs == 0 || state == State.FAILED) {
      return false;
    }
    refs++;
    return true;
  }

  public void release() {
    boolean close;
    synchronized (this) {
      close = --refs == 0;
    }
    if (close) {
      try {
        vertx.executeBlocking(() -> {
          channel.close();
          return null;
        }, false);
      } catch (RejectedExecutionException e) {
        // Vert.x is shutting down and its workers are gone; closing is quick, do it here.
        closeQuietly();
      }
    }
  }

  private void closeQuietly() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // nothing was written through this handle that is still needed
    }
  }

  /**
   * Reads up to {@code max} bytes at {@code position} into {@code dst}, waiting until they have
   * been written. Succeeds with the number of bytes read, 0 at the end of a verified blob; fails
   * if the fill fails. The caller must hold a reference, and owns {@code dst}.
   */
  public Future<Integer> read(long position, ByteBuf dst, int max) {
    long available;
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      available = readableLimit() - position;
      if (available <= 0) {
        if (state != State.FILLING) {
          return Future.succeededFuture(0);
        }
        Promise<Void> wake = Promise.promise();
        waiters.add(new Waiter(vertx.getOrCreateContext(), wake));
        return wake.future().compose(v -> read(position, dst, max));
      }
    }
    int n = (int) Math.min(max, available);
    return vertx.executeBlocking(() -> {
      int read = 0;
      while (read < n) {
        int r = dst.writeBytes(channel, position + read, n - read);
        if (r < 0) {
          throw new IOException("cache file shorter than written");
        }
        read += r;
      }
      return read;
    }, false);
  }

  /** Holding back the final byte until verification is what keeps corrupt blobs incomplete. */
  private long readableLimit() {
    return state == State.FILLING ? Math.max(0, written - 1) : written;
  }

  // ---- writing ----

  @Override
  public Future<Void> write(Buffer data) {
    if (ended || isFailed()) {
      return Future.failedFuture("blob fill is closed");
    }
    pending.add(data);
    queuedBytes += data.length();
    flush();
    return Future.succeededFuture();
  }

  @Override
  public Future<Void> end() {
    ended = true;
    flush();
    return done.future();
  }

  @Override
  public boolean writeQueueFull() {
    return queuedBytes >= HIGH_WATER;
  }

  @Override
  public BlobFill drainHandler(Handler<Void> handler) {
    this.drainHandler = handler;
    return this;
  }

  @Override
  public BlobFill setWriteQueueMaxSize(int maxSize) {
    return this;
  }

  @Override
  public BlobFill exceptionHandler(Handler<Throwable> handler) {
    return this;
  }

  private void flush() {
    if (flushing || isFailed()) {
      return;
    }
    if (pending.isEmpty()) {
      if (ended) {
        verify();
      }
      return;
    }
    flushing = true;
    List<Buffer> batch = new ArrayList<>(pending);
    pending.clear();
    vertx.executeBlocking(() -> {
      long n = 0;
      for (Buffer b : batch) {
        ByteBuffer nio = ((BufferInternal) b).getByteBuf().nioBuffer();
        hash.update(nio.duplicate());
        while (nio.hasRemaining()) {
          n += channel.write(nio);
        }
      }
      return n;
    }, false).onComplete(this::flushed);
  }

  private void flushed(AsyncResult<Long> result) {
    flushing = false;
    if (result.failed()) {
      abort(result.cause());
      return;
    }
    long n = result.result();
    queuedBytes -= n;
    synchronized (this) {
      written += n;
    }
    wakeReaders();
    Handler<Void> drain = drainHandler;
    if (drain != null && !writeQueueFull()) {
      drainHandler = null;
      drain.handle(null);
    }
    flush();
  }

  private void verify() {
    long size;
    synchronized (this) {
      size = written;
    }
    if (expectedSize >= 0 && size != expectedSize) {
      abort(OciError.BLOB_UNKNOWN.exception(
          "upstream sent " + size + " bytes of " + expectedSize + " for " + digest));
      return;
    }
    Digest actual = Digest.finish(digest.algorithm(), hash.digest());
    if (!actual.equals(digest)) {
      abort(OciError.DIGEST_INVALID.exception("upstream content for " + digest + " hashed to " + actual));
      return;
    }
    synchronized (this) {
      state = State.VERIFIED;
    }
    wakeReaders();
    store.install(tmp, channel, digest, size).onComplete(installed -> {
      if (installed.failed()) {
        fail(installed.cause());
        return;
      }
      synchronized (this) {
        state = State.COMMITTED;
      }
      release();
      done.complete();
    });
  }

  /**
   * Fails the fill: readers fail (their clients are cut off), and the file is deleted. A fill
   * already verified is left to finish installing its file: it has nothing left to fail.
   */
  public void abort(Throwable cause) {
    synchronized (this) {
      if (state != State.FILLING) {
        return;
      }
    }
    fail(cause);
  }

  private void fail(Throwable cause) {
    synchronized (this) {
      state = State.FAILED;
      failure = cause;
    }
    pending.clear();
    wakeReaders();
    store.discard(tmp);
    release();
    done.tryFail(cause);
  }

  private synchronized boolean isFailed() {
    return state == State.FAILED;
  }

  private void wakeReaders() {
    List<Waiter> woken;
    synchronized (this) {
      if (waiters.isEmpty()) {
        return;
      }
      woken = new ArrayList<>(waiters);
      waiters.clear();
    }
    for (Waiter w : woken) {
      w.context().runOnContext(v -> w.promise().complete());
    }
  }
}
