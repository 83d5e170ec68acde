package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.concurrent.Waiters;
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
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;

/*
 * Kept whole on purpose (about 430 lines): the write side (queue, batches, backpressure), the
 * reader side (available, read, wait) and the state machine (filling, verified, failed, closed)
 * share one lock and one set of fields, and every transition wakes readers and the writer
 * together. Split apart, each half would need the other's internals; the file and its hash
 * already live in FillFile and a reader's hold in FillReader.
 */
/**
 * A blob being written into the cache, readable by any number of clients while it grows.
 *
 * <p>The upstream body is piped in as a {@link WriteStream}: bytes are hashed and appended to a
 * temporary file on a worker thread in batches of a megabyte or more, so the event loop only
 * queues buffers and threads change hands rarely. Readers go at their own pace: those that keep
 * up are served from the buffers just received, without waiting for the disk; those that fall
 * behind read the file. So a slow client slows neither the fill nor other clients, and a client
 * that goes away does not stop the fill.
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

  /** Bytes queued for the disk before the upstream is paused: with RETAIN, the per-fill bound. */
  private static final long HIGH_WATER = 4L * 1024 * 1024;

  /** Bytes gathered before they are handed to the disk: fewer, larger writes and thread hops. */
  private static final long BATCH = 1024 * 1024;

  /** Bytes kept in memory behind the newest, written or not, for readers just behind. */
  private static final long RETAIN = 2L * 1024 * 1024;

  private enum State { FILLING, VERIFIED, COMMITTED, FAILED }

  private final Vertx vertx;
  private final Context writer;
  private final BlobStore store;
  private final FillMemory memory;
  private final Digest digest;
  private final FillFile file;
  private final Promise<Void> done = Promise.promise();
  private volatile long expectedSize = -1;

  // Write side, confined to the writer context.
  private final ArrayDeque<Buffer> pending = new ArrayDeque<>();
  private long queuedBytes;
  private boolean flushing;
  private boolean ended;
  private Handler<Void> drainHandler;
  private boolean awaitingMemory;

  // Shared with readers, guarded by this.
  private long received;
  private long written;
  private final RecentBytes recent = new RecentBytes(); // ends at received
  private State state = State.FILLING;
  private Throwable failure;
  private int refs = 1; // the writer's own reference
  private final Waiters waiters = new Waiters();

  BlobFill(Vertx vertx, Context writer, BlobStore store, FillMemory memory, Digest digest, Path tmp,
      FileChannel channel) {
    this.vertx = vertx;
    this.writer = writer;
    this.store = store;
    this.memory = memory;
    this.digest = digest;
    this.file = new FillFile(tmp, channel, digest.algorithm());
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

  /** Bytes taken from upstream so far, written or still queued: where a resumed transfer must start. */
  public synchronized long received() {
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
   * A reader of the blob as it grows, holding a reference that keeps the file open until it
   * releases it.
   *
   * @return null when the fill has failed, or finished and closed its file, in which case the
   *     blob is either in the store or gone
   */
  public GrowingBlob open() {
    synchronized (this) {
      if (refs == 0 || state == State.FAILED) {
        return null;
      }
      refs++;
    }
    return new FillReader(this);
  }

  void release() {
    boolean close;
    synchronized (this) {
      close = --refs == 0;
    }
    if (close) {
      try {
        vertx.executeBlocking(() -> {
          file.close();
          return null;
        }, false);
      } catch (RejectedExecutionException e) {
        // Vert.x is shutting down and its workers are gone; closing is quick, do it here.
        file.closeQuietly();
      }
    }
  }

  synchronized boolean isVerified() {
    return state == State.VERIFIED || state == State.COMMITTED;
  }

  /**
   * How many bytes can be read at {@code position}, waiting until there is at least one.
   * Succeeds with 0 at the end of a verified blob; fails if the fill fails.
   */
  Future<Long> available(long position) {
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
  Future<Void> awaitChange() {
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      if (state == State.FILLING) {
        Promise<Void> wake = Promise.promise();
        waiters.add(vertx.getOrCreateContext(), failed -> {
          if (failed == null) {
            wake.complete();
          } else {
            wake.fail(failed);
          }
        });
        return wake.future();
      }
    }
    return Future.succeededFuture();
  }

  /**
   * Up to {@code max} bytes at {@code position}; {@link #available} must have said there are
   * some. From memory, without a copy, while they are still there; else read from the file into
   * pooled direct memory, which the socket takes without another copy. The caller releases the
   * buffer once it is written, and must hold a reference.
   */
  Future<ByteBuf> read(long position, int max) {
    int n;
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      if (recent.covers(position)) {
        return Future.succeededFuture(recent.slice(position, (int) Math.min(max, received - position)));
      }
      // Only written bytes ever leave memory, so everything before it is in the file.
      n = (int) Math.min(max, written - position);
    }
    return vertx.executeBlocking(() -> file.read(position, n), false);
  }

  /** Holding back the final byte until verification is what keeps corrupt blobs incomplete. */
  private long readableLimit() {
    return state == State.FILLING ? Math.max(0, received - 1) : received;
  }

  // ---- writing ----

  @Override
  public Future<Void> write(Buffer data) {
    if (ended || isFailed()) {
      return Future.failedFuture("blob fill is closed");
    }
    if (data.length() == 0) {
      return Future.succeededFuture();
    }
    synchronized (this) {
      recent.add(received, data);
      received += data.length();
    }
    memory.take(data.length());
    pending.add(data);
    queuedBytes += data.length();
    wakeReaders();
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
    return queuedBytes >= HIGH_WATER || memory.exhausted();
  }

  @Override
  public BlobFill drainHandler(Handler<Void> handler) {
    this.drainHandler = handler;
    flush(); // with memory short, whatever is queued goes to disk now, to be given back
    maybeDrain();
    return this;
  }

  /** Resumes the upstream once this fill's queue is short again and memory is to be had. */
  private void maybeDrain() {
    Handler<Void> drain = drainHandler;
    if (drain == null || queuedBytes >= HIGH_WATER) {
      return; // the flush under way calls again
    }
    if (memory.exhausted()) {
      if (!awaitingMemory) {
        awaitingMemory = true;
        memory.onAvailable(writer, () -> {
          awaitingMemory = false;
          maybeDrain();
        });
      }
      return;
    }
    drainHandler = null;
    drain.handle(null);
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
    if (!ended && queuedBytes < BATCH && !memory.exhausted()) {
      return;
    }
    flushing = true;
    ByteBuffer[] batch = new ByteBuffer[pending.size()];
    for (int i = 0; i < batch.length; i++) {
      batch[i] = ((BufferInternal) pending.poll()).getByteBuf().nioBuffer();
    }
    vertx.executeBlocking(() -> file.append(batch), false).onComplete(this::flushed);
  }

  private void flushed(AsyncResult<Long> result) {
    flushing = false;
    if (result.failed()) {
      abort(result.cause());
      return;
    }
    long n = result.result();
    queuedBytes -= n;
    long freed;
    long keep = memory.exhausted() ? 0 : RETAIN;
    synchronized (this) {
      written += n;
      freed = recent.dropWritten(written, received, keep);
    }
    memory.give(freed);
    flush();
    maybeDrain();
  }

  private void verify() {
    long size = written();
    long expected = expectedSize;
    if (expected >= 0 && size != expected) {
      abort(OciError.UNAVAILABLE.exception(
          "upstream sent " + size + " bytes of " + expected + " for " + digest));
      return;
    }
    Digest actual = Digest.finish(digest.algorithm(), file.hash());
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
    store.install(file.path(), file.channel(), digest, size).onComplete(installed -> {
      if (installed.failed()) {
        fail(installed.cause());
        return;
      }
      synchronized (this) {
        state = State.COMMITTED;
      }
      dropRecent(); // readers still going read the file
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
    dropRecent();
    pending.clear();
    queuedBytes = 0;
    wakeReaders();
    store.discard(file.path());
    release();
    done.tryFail(cause);
  }

  private void dropRecent() {
    long freed;
    synchronized (this) {
      freed = recent.clear();
    }
    memory.give(freed);
  }

  private synchronized boolean isFailed() {
    return state == State.FAILED;
  }

  private void wakeReaders() {
    Waiters woken;
    Throwable failed;
    synchronized (this) {
      if (waiters.isEmpty()) {
        return;
      }
      woken = waiters.take();
      failed = failure;
    }
    woken.wake(failed);
  }
}
