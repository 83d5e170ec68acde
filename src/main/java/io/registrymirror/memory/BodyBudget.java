package io.registrymirror.memory;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.function.Function;

/**
 * The one bound on heap held by whole bodies: manifests read from upstream or from the cache,
 * tag lists, referrers, token and webhook answers. Whoever buffers a body first takes a
 * {@link Lease} for its size and gives it back once the bytes are no longer held; a body of
 * unknown length grows its lease chunk by chunk.
 *
 * <p>When the budget is spent, a reservation waits its turn (first come, first served) for at
 * most {@code maxWait}, then fails with {@code 503 UNAVAILABLE} and {@code Retry-After}: many
 * large answers at once make clients retry a moment later instead of exhausting the heap.
 * A lease that grows does not wait (its stream is in full flow) and fails the same way at once.
 */
public final class BodyBudget {

  /** Never less than this, so that the largest listing (8 MiB) and a few manifests always fit. */
  private static final long MIN_LIMIT = 16L * 1024 * 1024;
  /** Seconds a refused client is asked to wait: bodies are released within milliseconds. */
  private static final String RETRY_AFTER = "1";

  private final Vertx vertx;
  private final long limit;
  private final Duration maxWait;
  private final Deque<Waiter> waiters = new ArrayDeque<>();
  private long used;

  public BodyBudget(Vertx vertx, long limit, Duration maxWait) {
    this.vertx = vertx;
    this.limit = limit;
    this.maxWait = maxWait;
  }

  /**
   * A quarter of the heap ({@code -Xmx}), at least 16 MiB: the rest is left to the hot manifest
   * cache, blob fills and Vert.x itself.
   */
  public static long defaultLimit() {
    return Math.max(MIN_LIMIT, Runtime.getRuntime().maxMemory() / 4);
  }

  public long limit() {
    return limit;
  }

  public synchronized long used() {
    return used;
  }

  /**
   * Reserves {@code bytes}, waiting for them at most {@code maxWait}. Fails at once for more
   * than the whole budget.
   */
  public Future<Lease> reserve(long bytes) {
    if (bytes > limit) {
      return Future.failedFuture(spent(bytes));
    }
    Promise<Lease> promise;
    synchronized (this) {
      if (waiters.isEmpty() && used + bytes <= limit) {
        used += bytes;
        return Future.succeededFuture(new Lease(bytes));
      }
      promise = Promise.promise();
      Context context = vertx.getOrCreateContext();
      Waiter waiter = new Waiter(bytes, promise, context);
      waiters.addLast(waiter);
      waiter.timer = vertx.setTimer(maxWait.toMillis(), id -> expire(waiter));
    }
    return promise.future();
  }

  /**
   * Runs {@code work} under a lease of {@code bytes}, given back when its future completes: for
   * a body of known bound, read and used within {@code work}.
   */
  public <T> Future<T> within(long bytes, Function<Lease, Future<T>> work) {
    return reserve(bytes).compose(lease -> {
      Future<T> done;
      try {
        done = work.apply(lease);
      } catch (RuntimeException e) {
        done = Future.failedFuture(e);
      }
      return done.andThen(r -> lease.release());
    });
  }

  private void expire(Waiter waiter) {
    synchronized (this) {
      if (!waiters.remove(waiter)) {
        return;
      }
    }
    waiter.promise.tryFail(spent(waiter.bytes));
    // The head may have been the one that did not fit; those behind it might.
    grantWaiting();
  }

  private synchronized boolean take(long bytes) {
    if (used + bytes > limit) {
      return false;
    }
    used += bytes;
    return true;
  }

  private void give(long bytes) {
    synchronized (this) {
      used -= bytes;
    }
    grantWaiting();
  }

  /** Grants waiting reservations in order while they fit, each on its own context. */
  private void grantWaiting() {
    List<Waiter> granted = new ArrayList<>();
    synchronized (this) {
      while (!waiters.isEmpty() && used + waiters.peekFirst().bytes <= limit) {
        Waiter w = waiters.pollFirst();
        used += w.bytes;
        granted.add(w);
      }
    }
    for (Waiter w : granted) {
      vertx.cancelTimer(w.timer);
      Lease lease = new Lease(w.bytes);
      w.context.runOnContext(v -> {
        if (!w.promise.tryComplete(lease)) {
          lease.release();
        }
      });
    }
  }

  private RegistryException spent(long bytes) {
    return OciError.UNAVAILABLE.exception("the mirror is busy with other large answers (" + bytes
        + " bytes could not be held); retry").withHeader("Retry-After", RETRY_AFTER);
  }

  private static final class Waiter {
    final long bytes;
    final Promise<Lease> promise;
    final Context context;
    long timer;

    Waiter(long bytes, Promise<Lease> promise, Context context) {
      this.bytes = bytes;
      this.promise = promise;
      this.context = context;
    }
  }

  /** A body read whole, and the lease that accounts for it until its holder releases it. */
  public record Held(Buffer body, Lease lease) {}

  /** Bytes held against the budget until {@link #release}; safe to release more than once. */
  public final class Lease {

    private long bytes;
    private boolean released;

    private Lease(long bytes) {
      this.bytes = bytes;
    }

    /** Holds {@code more} bytes too, or fails with the budget's error when they do not fit now. */
    public void grow(long more) {
      synchronized (BodyBudget.this) {
        if (released) {
          throw new IllegalStateException("lease already released");
        }
        if (!take(more)) {
          throw spent(bytes + more);
        }
        bytes += more;
      }
    }

    public void release() {
      long given;
      synchronized (BodyBudget.this) {
        if (released) {
          return;
        }
        released = true;
        given = bytes;
      }
      give(given);
    }
  }
}
