package io.registrymirror.store;

import io.registrymirror.concurrent.Waiters;
import io.vertx.core.Context;

/**
 * The memory all fills together may hold for upstream bytes not yet on disk or kept for readers
 * just behind. Each fill pauses its upstream on its own bound, and every fill pauses once the
 * shared one is reached: memory stays bounded however many blobs are fetched at once. A paused
 * fill is resumed when memory is given back, on its own context.
 */
final class FillMemory {

  private final long limit;
  private long used;
  private final Waiters waiters = new Waiters();

  FillMemory(long limit) {
    this.limit = limit;
  }

  synchronized void take(long bytes) {
    used += bytes;
  }

  void give(long bytes) {
    Waiters woken;
    synchronized (this) {
      used -= bytes;
      if (used >= limit || waiters.isEmpty()) {
        return;
      }
      woken = waiters.take();
    }
    woken.wake(null);
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
        waiters.add(context, none -> resume.run());
        return;
      }
    }
    context.runOnContext(v -> resume.run());
  }
}
