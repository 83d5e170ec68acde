package io.registrymirror.store;

import java.nio.file.Path;

/**
 * Hears how a {@link CacheScrub} goes, on the thread that scrubs: for a progress bar, log lines
 * or metrics. Calls are frequent (after each file, and every MiB of a large one) and must be
 * cheap: a watcher decides how often it shows anything.
 */
public interface ScrubWatcher {

  void progress(ScrubProgress progress);

  /**
   * A file was removed, with its size, for the reason given (e.g. it does not match its digest).
   * {@code kind} is {@code blob}, {@code manifest} (a body or its media type) or {@code stray}
   * (a file that is no digest's path).
   */
  void removed(String kind, Path file, long size, String reason);

  /** A file could not be read or removed, and stays as it is. */
  void failed(Path file, Exception error);
}
