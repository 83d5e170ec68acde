package io.registrymirror.concurrent;

import io.vertx.core.Context;
import io.vertx.core.Handler;
import java.util.ArrayList;
import java.util.List;

/**
 * Whoever waits for a change, each woken on its own context: a waiter may be on any event loop,
 * and must go on where it started. Not thread-safe: the owner guards it with its own lock,
 * {@link #take()}s the waiters under it, and wakes them after letting go of it.
 */
public final class Waiters {

  private record Waiter(Context context, Handler<Throwable> wake) {}

  private List<Waiter> waiting = new ArrayList<>();

  /** {@code wake} runs on {@code context} with the failure it is woken with, or null. */
  public void add(Context context, Handler<Throwable> wake) {
    waiting.add(new Waiter(context, wake));
  }

  public boolean isEmpty() {
    return waiting.isEmpty();
  }

  /** Takes every waiter out, to be woken once the owner's lock is let go. */
  public Waiters take() {
    Waiters taken = new Waiters();
    taken.waiting = waiting;
    waiting = new ArrayList<>();
    return taken;
  }

  /** Wakes every waiter on its own context, with {@code failure} (null for none). */
  public void wake(Throwable failure) {
    for (Waiter w : waiting) {
      w.context().runOnContext(v -> w.wake().handle(failure));
    }
  }
}
