package io.registrymirror.store;

import java.time.Duration;

/**
 * When a scrub's progress is worth showing again: each tenth of the bytes, or once a period has
 * passed since it was last shown, whichever comes first. Time is the scrub's own, so that the
 * decision is the same however often a watcher is asked.
 */
public final class ScrubPace {

  private final long everyNanos;
  private int tenths;
  private long shown;

  public ScrubPace(Duration every) {
    this.everyNanos = every.toNanos();
  }

  public boolean due(ScrubProgress progress) {
    if (progress.tenths() <= tenths && progress.nanos() - shown < everyNanos) {
      return false;
    }
    tenths = progress.tenths();
    shown = progress.nanos();
    return true;
  }
}
