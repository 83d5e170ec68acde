package io.registrymirror.api;

import io.registrymirror.config.LimitsConfig;
import io.registrymirror.log.EventLog;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The connections open on the listener, all clients together and per client address, shared by
 * every server instance: a client that opens connections and sends nothing (or a byte now and
 * then) may hold only so many of them, and never the mirror's file descriptors.
 */
public final class ConnectionGuard {

  private static final EventLog LOG = EventLog.of(ConnectionGuard.class);
  /** Refusals are logged in one line per this period: under attack they come by the thousand. */
  private static final long REPORT_NANOS = TimeUnit.MINUTES.toNanos(1);

  private final LimitsConfig limits;
  private final AtomicInteger open = new AtomicInteger();
  private final AtomicLong refused = new AtomicLong();
  private final AtomicLong late = new AtomicLong();
  private final AtomicLong reported = new AtomicLong(System.nanoTime());
  private final ConcurrentHashMap<String, Integer> perClient = new ConcurrentHashMap<>();

  public ConnectionGuard(LimitsConfig limits) {
    this.limits = limits;
  }

  /** Counts a new connection from {@code address} in; false, counting nothing, when it is one too many. */
  boolean admit(String address) {
    if (open.incrementAndGet() > limits.connections()) {
      open.decrementAndGet();
      refused.incrementAndGet();
      return false;
    }
    boolean[] admitted = {false};
    perClient.compute(address, (a, n) -> {
      int held = n == null ? 0 : n;
      if (held >= limits.connectionsPerClient()) {
        return n;
      }
      admitted[0] = true;
      return held + 1;
    });
    if (!admitted[0]) {
      open.decrementAndGet();
      refused.incrementAndGet();
    }
    return admitted[0];
  }

  /** Counts a connection closed for not sending a request's headers in time. */
  void closedLate() {
    late.incrementAndGet();
  }

  /** Logs what the limits refused since the last report, at most once a period, if anything. */
  void report() {
    long last = reported.get();
    long now = System.nanoTime();
    if (now - last < REPORT_NANOS || !reported.compareAndSet(last, now)) {
      return;
    }
    long refusedNow = refused.getAndSet(0);
    long lateNow = late.getAndSet(0);
    if (refusedNow > 0 || lateNow > 0) {
      LOG.warn("listener.limited", "refused", refusedNow, "headerTimeouts", lateNow, "open", open.get(),
          "seconds", TimeUnit.NANOSECONDS.toSeconds(now - last));
    }
  }

  /** Counts a closed connection from {@code address} out. */
  void release(String address) {
    open.decrementAndGet();
    perClient.computeIfPresent(address, (a, n) -> n <= 1 ? null : n - 1);
  }

  /** How long a connection may take from its opening, or its previous answer, to a request's headers. */
  Duration headerTimeout() {
    return limits.headerTimeout();
  }
}
