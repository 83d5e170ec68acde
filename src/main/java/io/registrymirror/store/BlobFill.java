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
 * <p>The write side runs on the context of the request that started the fill (the writer
 * context); readers may be on any event loop, so the state they share is guarded by this
 * object's lock, and every reader is woken on its own context.
 */
public final class BlobFill implements WriteStream<Buffer> {

  /** Bytes queued for the disk before the upstream is paused: the per-fill memory bound. */
  private static final long HIGH_WATER = 8L * 1024 * 1024;

  private enum State { FILLING, VERIFIED, COMMITTED, FAILED }

  private record Waiter(Context context, Promise<Void> promise) {}

  private final Vertx vertx;
  private final Context writer;
  private final BlobStore store;
  private final Digest digest;
  private final Path tmp;
  private final FileChannel channel;
  private final MessageDigest hash;
  private final Promise<Void> done = Promise.promise();
  private volatile long expectedSize = -1;

  // Write side, confined to the writer context.
  private final ArrayDeque<Buffer> pending = new ArrayDeque<>();
  private long received;
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

  BlobFill(Vertx vertx, Context writer, BlobStore store, Digest digest, Path tmp, FileChannel channel) {
    this.vertx = vertx;
    this.writer = writer;
    this.store = store;
    this.digest = digest;
    this.tmp = tmp;
    this.channel = channel;
    this.hash = digest.algorithm().newMessageDigest();
  }

  public Digest digest() {
    return digest;
  }

  /** Records the length upstream announced, once its response headers are in. */
  public void expect(long size) {
    expectedSize = size;
  }

  /** The length upstream announced, or -1 when it sent none. */
  public long expectedSize() {
    return expectedSize;
  }

  /** Bytes written so far; the blob's size once the fill is complete. */
  public synchronized long written() {
    return written;
  }

  /**
   * Bytes taken from upstream so far, written or still queued: where a resumed transfer must
   * start. Writer context only.
   */
  public long received() {
    return received;
  }

  /** Whether bytes are still expected: neither verified nor failed. */
  public synchronized boolean isFilling() {
    return state == State.FILLING;
  }

  /** Completes once the blob is verified and in the cache; fails when the fill fails. */
  public Future<Void> completion() {
    return done.future();
  }

  // ---- reading ----

  /**
   * Takes a reference for a reader, keeping the file open until {@link #release()}.
   *
   * @return false when the fill has failed, or finished and closed its file, in which case the
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

  public synchronized boolean isVerified() {
    return state == State.VERIFIED || state == State.COMMITTED;
  }

  /**
   * How many bytes can be read at {@code position}, waiting until there is at least one.
   * Succeeds with 0 at the end of a verified blob; fails if the fill fails.
   */
  public Future<Long> available(long position) {
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      long n = readableLimit() - position;
      if (n > 0 || state != State.FILLING) {
        return Future.succeededFuture(Math.max(0, n));
      }
    }
    return awaitChange().compose(v -> available(position));
  }

  /**
   * Completes, on the caller's context, at the next progress or change of state; at once if the
   * fill has already ended. Fails if the fill fails.
   */
  public Future<Void> awaitChange() {
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      if (state == State.FILLING) {
        Promise<Void> wake = Promise.promise();
        waiters.add(new Waiter(vertx.getOrCreateContext(), wake));
        return wake.future();
      }
    }
    return Future.succeededFuture();
  }

  /**
   * Reads exactly {@code n} bytes at {@code position} into {@code dst}, which the caller owns;
   * {@link #available} must have said they are there. The caller must hold a reference.
   */
  public Future<Void> read(long position, ByteBuf dst, int n) {
    return vertx.executeBlocking(() -> {
      int read = 0;
      while (read < n) {
        int r = dst.writeBytes(channel, position + read, n - read);
        if (r < 0) {
          throw new IOException("cache file shorter than written");
        }
        read += r;
      }
      return null;
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
    received += data.length();
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
    long size = written();
    long expected = expectedSize;
    if (expected >= 0 && size != expected) {
      abort(OciError.UNAVAILABLE.exception(
          "upstream sent " + size + " bytes of " + expected + " for " + digest));
      return;
    }
    Digest actual = Digest.finish(digest.algorithm(), hash.digest());
    if (!actual.equals(digest)) {
      abort(OciError.UNAVAILABLE.exception("upstream content for " + digest + " hashed to " + actual));
      return;
    }
    synchronized (this) {
      if (state != State.FILLING) {
        return;
      }
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
   * Fails the fill, from any thread: readers fail (their clients are cut off), and the file is
   * deleted. A fill already verified is left to finish installing its file.
   */
  public void abort(Throwable cause) {
    writer.runOnContext(v -> {
      synchronized (this) {
        if (state != State.FILLING) {
          return;
        }
      }
      fail(cause);
    });
  }

  /** Runs on the writer context. */
  private void fail(Throwable cause) {
    synchronized (this) {
      if (state == State.FAILED) {
        return;
      }
      state = State.FAILED;
      failure = cause;
    }
    pending.clear();
    queuedBytes = 0;
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
    Throwable failed = failure();
    for (Waiter w : woken) {
      w.context().runOnContext(v -> {
        if (failed == null) {
          w.promise().complete();
        } else {
          w.promise().fail(failed);
        }
      });
    }
  }

  private synchronized Throwable failure() {
    return failure;
  }
}
