package io.registrymirror.api;

import io.registrymirror.config.LimitsConfig;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The connections open on the listener, all clients together and per client address, shared by
 * every server instance: a client that opens connections and sends nothing (or a byte now and
 * then) may hold only so many of them, and never the mirror's file descriptors.
 */
public final class ConnectionGuard {

  private final LimitsConfig limits;
  private final AtomicInteger open = new AtomicInteger();
  private final ConcurrentHashMap<String, Integer> perClient = new ConcurrentHashMap<>();

  public ConnectionGuard(LimitsConfig limits) {
    this.limits = limits;
  }

  /** Counts a new connection from {@code address} in; false, counting nothing, when it is one too many. */
  boolean admit(String address) {
    if (open.incrementAndGet() > limits.connections()) {
      open.decrementAndGet();
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
    }
    return admitted[0];
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
