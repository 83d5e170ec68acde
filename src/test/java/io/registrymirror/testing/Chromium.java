package io.registrymirror.testing;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Debian's headless Chromium loading a page as a person's browser would: its scripts run, then
 * the DOM they left is printed and the window is saved as a PNG.
 */
public final class Chromium {

  private static final String BINARY = "chromium";

  /**
   * Virtual time the page gets before its DOM is printed. Chromium stops the virtual clock while
   * requests are in flight, so the page's fetches complete however slow the machine; its own
   * timers (a refresh every 10 s) do not fire within it.
   */
  private static final Duration PAGE_TIME = Duration.ofSeconds(5);

  private Chromium() {}

  /** Whether {@code chromium} is on the PATH. */
  public static boolean available() {
    String path = System.getenv().getOrDefault("PATH", "");
    for (String dir : path.split(File.pathSeparator)) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, BINARY))) {
        return true;
      }
    }
    return false;
  }

  /**
   * Loads {@code url} in a new profile under {@code scratch}, saves a 1280x1000 screenshot to
   * {@code screenshot} and returns the DOM once the page's scripts have run.
   */
  public static String load(String url, Path screenshot, Path scratch) {
    // Runs as root in CI, where Chromium's sandbox cannot start; nothing but the mirror is loaded.
    return Exec.run(Duration.ofSeconds(120), Map.of(), List.of(BINARY,
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--user-data-dir=" + scratch.resolve("profile"),
        "--virtual-time-budget=" + PAGE_TIME.toMillis(),
        "--window-size=1280,1000",
        "--screenshot=" + screenshot.toAbsolutePath(),
        "--dump-dom",
        url));
  }
}
