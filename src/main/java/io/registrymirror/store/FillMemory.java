package io.registrymirror.store;

import io.vertx.core.Context;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory all fills together may hold for upstream bytes not yet on disk or kept for readers
 * just behind. Each fill pauses its upstream on its own bound, and every fill pauses once the
 * shared one is reached: memory stays bounded however many blobs are fetched at once. A paused
 * fill is resumed when memory is given back, on its own context.
 */
final class FillMemory {

  private record Waiter(Context context, Runnable resume) {}

  private final long limit;
  private long used;
  private final List<Waiter> waiters = new ArrayList<>();

  FillMemory(long limit) {
    this.limit = limit;
  }

  synchronized void take(long bytes) {
    used += bytes;
  }

  void give(long bytes) {
    List<Waiter> woken;
    synchronized (this) {
      used -= bytes;
      if (used >= limit || waiters.isEmpty()) {
        return;
      }
      woken = new ArrayList<>(waiters);
      waiters.clear();
    }
    for (Waiter w : woken) {
      w.context().runOnContext(v -> w.resume().run());
    }
  }

  synchronized long used() {
    return used;
  }

  synchronized boolean exhausted() {
    return used >= limit;
  }

  /** Runs {@code resume} on {@code context} once memory is given back; at once if it already is. */
  void onAvailable(Context context, Runnable resume) {
    synchronized (this) {
      if (used >= limit) {
        waiters.add(new Waiter(context, resume));
        return;
      }
    }
    context.runOnContext(v -> resume.run());
  }
}
