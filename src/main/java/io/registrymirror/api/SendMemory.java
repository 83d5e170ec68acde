package io.registrymirror.api;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The memory that chunks read for clients may hold on their way to the socket, all clients
 * together, and the rule that takes it back from clients that stop reading. Without it, a few
 * hundred connections that ask for a blob over TLS (or fall behind a fill) and then stop reading
 * would each pin a window of chunks, and together exhaust the direct memory every socket needs:
 * the whole mirror would stop answering.
 *
 * <p>A chunk that does not fit waits for memory. Memory given back goes first to the waiting
 * client address that holds the least, oldest first among equals, so connections from one address
 * that stop reading delay their own later requests before another address's.
 *
 * <p>A client that has had a chunk waiting for its socket, with nothing taken, for the timeout is
 * cut; while other clients wait for memory, already after {@link #PRESSED_STALL}. A slow client
 * keeps its connection as long as it takes something now and then; a stalled one cannot keep
 * others waiting for long.
 */
final class SendMemory {

  /** At least this much, whatever the JVM's direct memory: a few clients' windows. */
  private static final long MIN_LIMIT = 4L * 1024 * 1024;

  /**
   * How long a client may take nothing while others wait for memory: a client that takes less
   * than a 256 KiB chunk in this time reads under about 128 KiB/s, and its download resumes.
   */
  static final Duration PRESSED_STALL = Duration.ofSeconds(2);

  private final Vertx vertx;
  private final long limit;
  private final long timeoutNanos;
  private final long pressedNanos;
  private long used;
  private final Map<String, Long> heldBy = new HashMap<>();
  private final Set<Waiter> waiting = new LinkedHashSet<>();
  private final Set<Client> clients = new HashSet<>();

  SendMemory(Vertx vertx, long limit, Duration timeout) {
    this.vertx = vertx;
    this.limit = limit;
    this.timeoutNanos = timeout.toNanos();
    this.pressedNanos = Math.min(timeoutNanos, PRESSED_STALL.toNanos());
    // Often enough that a stalled client is cut within a quarter of its allowance past it.
    vertx.setPeriodic(Math.max(1, Duration.ofNanos(pressedNanos).toMillis() / 4), id -> sweep());
  }

  /** A quarter of the direct memory, where chunks are read (at least {@link #MIN_LIMIT}). */
  static long defaultLimit(long maxDirectMemory) {
    return Math.max(MIN_LIMIT, maxDirectMemory / 4);
  }

  long limit() {
    return limit;
  }

  synchronized long used() {
    return used;
  }

  /**
   * A client at {@code address} that will be sent chunks; {@code cut} ends it, on the calling
   * context, once it has stalled.
   */
  synchronized Client open(String address, Runnable cut) {
    Client client = new Client(address, vertx.getOrCreateContext(), cut);
    clients.add(client);
    return client;
  }

  private void sweep() {
    List<Client> stalled = new ArrayList<>();
    synchronized (this) {
      long now = System.nanoTime();
      long allowed = waiting.isEmpty() ? timeoutNanos : pressedNanos;
      for (Client c : clients) {
        if (c.pending > 0 && now - c.since >= allowed) {
          stalled.add(c);
        }
      }
      clients.removeAll(stalled);
    }
    for (Client c : stalled) {
      c.context.runOnContext(v -> c.cut.run());
    }
  }

  private Lease take(String address, int bytes) {
    used += bytes;
    heldBy.merge(address, (long) bytes, Long::sum);
    return new Lease(address, bytes);
  }

  private void give(String address, int bytes) {
    List<Granted> granted = new ArrayList<>();
    synchronized (this) {
      used -= bytes;
      heldBy.computeIfPresent(address, (a, held) -> held == bytes ? null : held - bytes);
      for (Waiter next = nextWaiter(); next != null && used + next.bytes <= limit; next = nextWaiter()) {
        waiting.remove(next);
        granted.add(new Granted(next, take(next.address, next.bytes)));
      }
    }
    for (Granted g : granted) {
      g.waiter.context.runOnContext(v -> {
        if (!g.waiter.promise.tryComplete(g.lease)) {
          g.lease.release();
        }
      });
    }
  }

  /** The oldest waiter of the address that holds least. */
  private Waiter nextWaiter() {
    Waiter best = null;
    long least = Long.MAX_VALUE;
    for (Waiter w : waiting) {
      long held = heldBy.getOrDefault(w.address, 0L);
      if (held < least) {
        best = w;
        least = held;
      }
    }
    return best;
  }

  private record Waiter(String address, int bytes, Promise<Lease> promise, Context context) {}

  private record Granted(Waiter waiter, Lease lease) {}

  /** One client being sent chunks: what it holds, and since when it has taken nothing. */
  final class Client {

    private final String address;
    private final Context context;
    private final Runnable cut;
    /** Chunks handed to the socket and not yet taken by it. */
    private int pending;
    /** When the socket last took a chunk, or was handed one with none pending. */
    private long since;

    private Client(String address, Context context, Runnable cut) {
      this.address = address;
      this.context = context;
      this.cut = cut;
    }

    /**
     * Memory for one chunk of at most the whole limit: at once if it fits and nobody waits,
     * otherwise once it is this address's turn.
     */
    Future<Lease> reserve(int bytes) {
      Promise<Lease> promise;
      synchronized (SendMemory.this) {
        if (waiting.isEmpty() && used + bytes <= limit) {
          return Future.succeededFuture(take(address, bytes));
        }
        promise = Promise.promise();
        waiting.add(new Waiter(address, bytes, promise, context));
      }
      return promise.future();
    }

    /** A chunk was handed to the socket. */
    void sending() {
      synchronized (SendMemory.this) {
        if (pending++ == 0) {
          since = System.nanoTime();
        }
      }
    }

    /** The socket took a chunk (or failed to). */
    void sent() {
      synchronized (SendMemory.this) {
        pending--;
        since = System.nanoTime();
      }
    }

    /** Nothing more will be sent: no longer watched. */
    void close() {
      synchronized (SendMemory.this) {
        clients.remove(this);
      }
    }
  }

  /** One chunk's memory, held until {@link #release}; safe to release more than once. */
  final class Lease {

    private final String address;
    private final int bytes;
    private boolean released;

    private Lease(String address, int bytes) {
      this.address = address;
      this.bytes = bytes;
    }

    void release() {
      synchronized (SendMemory.this) {
        if (released) {
          return;
        }
        released = true;
      }
      give(address, bytes);
    }
  }
}
