package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.concurrent.Waiters;
import io.registrymirror.oci.Digest;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/*
 * Why this class is whole at its length: the reader side and the state machine (filling,
 * verified, committed, failed; with or without the disk) share one lock and one set of fields
 * (received, hashed, written, the recent bytes, the holds), and every transition must wake the
 * readers under that lock. Split, the invariants between those fields would span classes and
 * the lock would have to be passed around. What has its own state is already apart: the write
 * side is FillWriter, who holds the fill FillHolds, the file FillFile, the bytes in memory
 * RecentBytes.
 */
/**
 * A blob being written into the cache, readable by any number of clients while it grows.
 *
 * <p>Upstream's body is piped into its {@link #input()}, hashed and appended to a temporary file
 * on a worker, straight from the buffers it arrived in. Readers go at their own pace: those that
 * keep up are served from the buffers just received; those that fall behind read the file. So a slow client slows neither the fill nor
 * other clients, and a client that goes away does not stop the fill.
 *
 * <p>If the disk fails partway (full, or gone read-only), the fill's readers are not cut off: it
 * stops writing, goes on hashing, and streams the rest to them from memory, letting go of bytes
 * once every reader is past them, so the slowest reader paces the upstream within the usual
 * bounds. Bytes already in the file are read from it. No new reader is let in (the start of the
 * blob may be gone from memory), the blob is not installed, and its file is deleted when the last
 * reader is done.
 *
 * <p>The last byte is held back from every reader until the digest and length are verified: a
 * truncated or corrupt upstream body can never be received as complete.
 *
 * <p>The write side runs on the context of the request that started the fill (the writer
 * context); readers may be on any event loop, so the state they share is guarded by this
 * object's lock, and every reader is woken on its own context.
 */
public final class BlobFill {

  /** Bytes kept in memory behind the newest, written or not, for readers just behind. */
  private static final long RETAIN = 2L * 1024 * 1024;

  /** The most a fill that lost its disk holds for its readers: what it may hold otherwise. */
  private static final long HOLD = FillWriter.HIGH_WATER + RETAIN;

  private enum State { FILLING, VERIFIED, COMMITTED, FAILED }

  private final Vertx vertx;
  private final Context writer;
  private final BlobStore store;
  private final FillMemory memory;
  private final Digest digest;
  private final FillFile file;
  private final FillWriter writes;
  private final Promise<Void> done = Promise.promise();
  /** Whether the verified blob is installed, or only read by this fill's readers and deleted. */
  private final boolean keep;
  private volatile long expectedSize = -1;
  private Handler<Throwable> onWriteFailure = cause -> { };

  // Shared with readers, guarded by this.
  private long received;
  private long hashed;
  private long written; // in the file
  private final RecentBytes recent = new RecentBytes(); // ends at received
  private State state = State.FILLING;
  private Throwable failure;
  /** Why the disk failed under this fill, which is then not stored; null while it has not. */
  private Throwable writeFailure;
  private final FillHolds holds = new FillHolds();
  private final Waiters waiters = new Waiters();

  BlobFill(Vertx vertx, Context writer, BlobStore store, FillMemory memory, Digest digest, Path tmp,
      FileChannel channel, boolean keep) {
    this.vertx = vertx;
    this.keep = keep;
    this.writer = writer;
    this.store = store;
    this.memory = memory;
    this.digest = digest;
    this.file = new FillFile(tmp, channel, digest.algorithm());
    this.writes = new FillWriter(vertx, writer, memory, file, this);
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

  /** Bytes hashed so far; the blob's size once the fill is complete. */
  public synchronized long size() {
    return hashed;
  }

  /** Bytes taken from upstream so far, hashed or still queued: where a resumed transfer must start. */
  public synchronized long received() {
    return received;
  }

  /**
   * Whether the disk failed under this fill: it serves the readers it has, lets no new one in,
   * and stores nothing.
   */
  public synchronized boolean writeFailed() {
    return writeFailure != null;
  }

  /**
   * Completes once the blob is verified and in the cache (or, not kept, verified); fails when the fill fails, or with
   * {@link NotStored} once a fill whose disk failed is over.
   */
  public Future<Void> completion() {
    return done.future();
  }

  /**
   * The file of a verified copy that is not kept (a blob another replica owns), which stays where
   * it is until its last holder lets go: a holder may send it as it would a cached file. Null for
   * any other fill.
   */
  public synchronized String copyFile() {
    return !keep && state == State.VERIFIED ? file.path().toString() : null;
  }

  /** Called, once at most, on the writer context when the disk fails under this fill. */
  public BlobFill onWriteFailure(Handler<Throwable> handler) {
    this.onWriteFailure = handler;
    return this;
  }

  // ---- reading ----

  /**
   * A reader of the blob as it grows, holding a reference that keeps the file open until it
   * releases it. Once the disk has failed, the fill keeps in memory every byte from the slowest
   * reader's place on: a holder must read on or release.
   *
   * @return null when the fill has failed, lost its disk, or finished and closed its file, in
   *     which case the blob is either in the store or gone
   */
  public GrowingBlob open() {
    synchronized (this) {
      if (!holds.inUse() || state == State.FAILED || writeFailure != null) {
        return null;
      }
      FillReader reader = new FillReader(this);
      holds.add(reader);
      return reader;
    }
  }

  void release(FillReader reader) {
    Throwable abandoned;
    synchronized (this) {
      holds.remove(reader);
      abandoned = !holds.hasReaders() && state == State.FILLING ? writeFailure : null;
    }
    if (abandoned != null) {
      // Nobody is left to stream to, and nothing will be stored: upstream can stop.
      abort(new NotStored(abandoned));
    } else {
      resumeAfterLettingGo();
    }
    closeIfUnused();
  }

  private void releaseWriter() {
    synchronized (this) {
      holds.writerDone();
    }
    closeIfUnused();
  }

  /** Closes the file once no one holds the fill, and deletes it unless it was installed. */
  private void closeIfUnused() {
    boolean installed;
    synchronized (this) {
      if (!holds.closeNow()) {
        return;
      }
      installed = state == State.COMMITTED;
    }
    file.close(vertx).onComplete(r -> {
      if (!installed) {
        store.discard(file.path());
      }
    });
  }

  synchronized boolean isVerified() {
    return state == State.VERIFIED || state == State.COMMITTED;
  }

  /**
   * How many bytes can be read at {@code position}, waiting until there is at least one.
   * Succeeds with 0 at the end of a verified blob; fails if the fill fails.
   */
  Future<Long> available(FillReader reader, long position) {
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      reader.moveTo(position);
      long n = readableLimit() - position;
      if (n > 0 || state != State.FILLING) {
        return Future.succeededFuture(Math.max(0, n));
      }
    }
    return awaitChange().compose(v -> available(reader, position));
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
   * Up to {@code max} bytes at {@code position}, which moves the reader there; {@link #available}
   * must have said there are some. From memory, without a copy, while they are still there; else
   * read from the file into pooled direct memory, which the socket takes without another copy.
   * The caller releases the buffer once it is written.
   */
  Future<ByteBuf> read(FillReader reader, long position, int max) {
    ByteBuf inMemory = null;
    int n;
    boolean diskFailed;
    synchronized (this) {
      if (state == State.FAILED) {
        return Future.failedFuture(failure);
      }
      if (recent.covers(position)) {
        n = (int) Math.min(max, received - position);
        inMemory = recent.slice(position, n);
      } else {
        // Bytes leave memory once in the file, or (the disk failed) once every reader is past them.
        n = (int) Math.min(max, written - position);
        if (n <= 0) {
          return Future.failedFuture(new IllegalStateException(
              "bytes at " + position + " of " + digest + " are no longer held"));
        }
      }
      reader.moveTo(position + n);
      diskFailed = writeFailure != null;
    }
    if (diskFailed) {
      resumeAfterLettingGo();
    }
    if (inMemory != null) {
      return Future.succeededFuture(inMemory);
    }
    return vertx.executeBlocking(() -> file.read(position, n), false);
  }

  /** Holding back the final byte until verification is what keeps corrupt blobs incomplete. */
  private long readableLimit() {
    return state == State.FILLING ? Math.max(0, received - 1) : received;
  }

  // ---- writing ----

  /** Where upstream's body is piped: a sink on the writer context, full as the fill needs. */
  public BodySink input() {
    return writes;
  }

  /** Takes bytes in from the write side, and a reference to them, and lets readers at them. Writer context. */
  void took(ByteBuf data) {
    int n = data.readableBytes();
    synchronized (this) {
      recent.add(received, data);
      received += n;
    }
    memory.take(n);
    wakeReaders();
  }

  /** Whether the fill, having lost its disk, holds as much for its readers as it may. */
  synchronized boolean holdsTooMuch() {
    return writeFailure != null && recent.bytes() >= HOLD;
  }

  /** A batch of {@code n} bytes was hashed, and appended to the file if {@code onDisk}. Writer context. */
  void hashed(long n, boolean onDisk) {
    synchronized (this) {
      hashed += n;
      if (onDisk) {
        written += n;
      }
    }
    letGo();
  }

  /**
   * A write failed, or installing the file: the fill goes on without the disk, for the readers
   * it has. Writer context.
   */
  void diskFailed(Throwable cause) {
    boolean alone;
    synchronized (this) {
      writeFailure = cause;
      alone = !holds.hasReaders() && state == State.FILLING;
    }
    onWriteFailure.handle(cause);
    if (alone) {
      fail(new NotStored(cause)); // nobody to stream to
    }
  }

  /** Gives back the memory of bytes no reader will read from it; returns how many. Any thread. */
  private long letGo() {
    long freed;
    synchronized (this) {
      long keep = writeFailure == null && !memory.exhausted() ? RETAIN : 0;
      freed = recent.dropBefore(dropLimit(), received, keep);
    }
    if (freed > 0) {
      memory.give(freed);
    }
    return freed;
  }

  /** After a reader moved on or left: lets go of what it held, and resumes upstream if that made room. */
  private void resumeAfterLettingGo() {
    if (letGo() > 0) {
      writer.runOnContext(v -> writes.maybeDrain());
    }
  }

  /** Under the lock: the bytes before it are in the file or, the disk having failed, past every reader. */
  private long dropLimit() {
    return writeFailure == null ? written : Math.max(written, holds.slowest(hashed));
  }

  /** Every byte is in, its length and digest checked: installs the file. Writer context. */
  void verified() {
    Throwable lost;
    synchronized (this) {
      if (state != State.FILLING) {
        return;
      }
      state = State.VERIFIED;
      lost = writeFailure;
    }
    wakeReaders();
    if (lost != null) {
      unstored();
      return;
    }
    if (!keep) {
      // Complete for its readers, who read on from the file; it goes with the last of them.
      dropRecent();
      releaseWriter();
      done.complete();
      return;
    }
    store.install(file.path(), file.channel(), digest, size()).onComplete(installed -> {
      if (installed.failed()) {
        diskFailed(installed.cause());
        unstored();
        return;
      }
      synchronized (this) {
        state = State.COMMITTED;
      }
      dropRecent(); // readers still going read the file
      releaseWriter();
      done.complete();
    });
  }

  /** Ends a verified fill that is not stored: its readers go on to the end, then its file goes. */
  private void unstored() {
    Throwable cause;
    synchronized (this) {
      cause = writeFailure;
    }
    letGo();
    releaseWriter();
    done.tryFail(new NotStored(cause));
  }

  /**
   * Fails the fill, from any thread: readers fail (their clients are cut off), and the file is
   * deleted once they let go. A fill already verified is left to finish.
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
    writes.stop();
    wakeReaders();
    releaseWriter();
    done.tryFail(cause);
  }

  private void dropRecent() {
    long freed;
    synchronized (this) {
      freed = recent.clear();
    }
    memory.give(freed);
  }

  synchronized boolean isFailed() {
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
