package io.registrymirror;

import io.registrymirror.config.ConfigException;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.MirrorConfig;
import io.registrymirror.store.CacheLayout;
import io.registrymirror.store.CacheScrub;
import io.registrymirror.store.ScrubPace;
import io.registrymirror.store.ScrubProgress;
import io.registrymirror.store.ScrubWatcher;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.FileSystemException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;

/**
 * {@code java -jar registry-mirror.jar scrub [--config FILE]}: hashes every cached blob and
 * manifest again, once, and removes what does not match its digest, showing how far it has got.
 */
public final class ScrubCommand {

  static final String USAGE = """
      usage: java -jar registry-mirror.jar scrub [--config FILE]

      Hashes every blob and manifest in the cache directory (cache.dir, or MIRROR_CACHE_DIR) again
      and removes those that do not match their digest, with a manifest's media type, and files
      that are no digest's path. Files being written (tmp/) are not touched, so it may run beside
      a mirror. Exits 0 when the cache is clean or repaired, 1 when the cache directory cannot be
      read or a file cannot be read or removed, 2 on a configuration error.
      """;

  /** A terminal's bar is redrawn this often; plain output gets a line each tenth or this often. */
  private static final Duration REDRAW = Duration.ofMillis(100);
  private static final Duration LINE_EVERY = Duration.ofSeconds(5);
  private static final int BAR_WIDTH = 30;

  private ScrubCommand() {}

  /**
   * Runs the command and returns its exit status.
   *
   * @param terminal whether {@code out} is a terminal: a bar redrawn in place, else plain lines
   */
  public static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err, boolean terminal) {
    Path configFile = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--config", "-c" -> {
          if (i + 1 >= args.length) {
            err.println("--config needs a file\n" + USAGE);
            return 2;
          }
          configFile = Path.of(args[++i]);
        }
        case "--help", "-h" -> {
          out.println(USAGE);
          return 0;
        }
        default -> {
          err.println("unknown argument " + args[i] + "\n" + USAGE);
          return 2;
        }
      }
    }
    MirrorConfig config;
    try {
      config = ConfigLoader.load(configFile, env);
    } catch (ConfigException e) {
      err.println("registry-mirror scrub: configuration error: " + e.getMessage());
      return 2;
    }
    CacheLayout layout = new CacheLayout(config.cacheDir());
    Display display = new Display(layout.root(), out, err, terminal);
    out.println("scrub: checking " + layout.root());
    ScrubProgress summary;
    try {
      // Nothing runs in this process but the scrub: no index to tell of a blob removed.
      summary = new CacheScrub(layout, digest -> { }, display).run();
    } catch (IOException e) {
      display.endBar();
      err.println("registry-mirror scrub: cache.dir: " + layout.root() + " cannot be used: " + reason(e));
      return 1;
    }
    display.endBar();
    out.printf(Locale.ROOT, "scrub: checked %s, %s in %.1f s (%s/s); removed %s, %s%n",
        files(summary.files()), size(summary.bytes()), summary.nanos() / 1e9, size(summary.bytesPerSecond()),
        files(summary.removed()), size(summary.removedBytes()));
    if (summary.failed() > 0) {
      err.println("registry-mirror scrub: " + files(summary.failed()) + " could not be read or removed");
      return 1;
    }
    return 0;
  }

  private static String reason(IOException e) {
    if (e instanceof NotDirectoryException) {
      return "not a directory";
    }
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason();
    }
    return e.toString();
  }

  private static String files(long n) {
    return n == 1 ? "1 file" : n + " files";
  }

  /** {@code 1.5 GiB}: binary units, one decimal. */
  static String size(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = bytes;
    int unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return unit == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }

  /** Shows the scrub as it goes: a bar on a terminal, redrawn in place; plain lines otherwise. */
  private static final class Display implements ScrubWatcher {

    private final Path root;
    private final PrintStream out;
    private final PrintStream err;
    private final boolean terminal;
    private final ScrubPace pace;
    private boolean barShown;

    Display(Path root, PrintStream out, PrintStream err, boolean terminal) {
      this.root = root;
      this.out = out;
      this.err = err;
      this.terminal = terminal;
      this.pace = new ScrubPace(terminal ? REDRAW : LINE_EVERY);
    }

    @Override
    public void progress(ScrubProgress p) {
      if (!pace.due(p)) {
        return;
      }
      if (!terminal) {
        out.printf(Locale.ROOT, "scrub: %d%% %s of %s, %d of %d files, %s/s, %d removed%n", p.tenths() * 10,
            size(p.bytes()), size(p.bytesTotal()), p.files(), p.filesTotal(), size(p.bytesPerSecond()), p.removed());
        return;
      }
      long done = p.bytesTotal() <= 0 ? BAR_WIDTH : Math.min(BAR_WIDTH, p.bytes() * BAR_WIDTH / p.bytesTotal());
      long percent = p.bytesTotal() <= 0 ? 100 : Math.min(100, p.bytes() * 100 / p.bytesTotal());
      // \r and "erase line" redraw the bar where it stands.
      out.printf(Locale.ROOT, "\r\033[2K[%s%s] %3d%%  %s / %s  %d/%d files  %s/s  %d removed",
          "#".repeat((int) done), "-".repeat(BAR_WIDTH - (int) done), percent, size(p.bytes()), size(p.bytesTotal()),
          p.files(), p.filesTotal(), size(p.bytesPerSecond()), p.removed());
      out.flush();
      barShown = true;
    }

    @Override
    public void removed(String kind, Path file, long size, String reason) {
      clearBar();
      out.println("removed " + root.relativize(file) + " (" + size(size) + "): " + reason);
    }

    @Override
    public void failed(Path file, Exception error) {
      clearBar();
      err.println("cannot check " + root.relativize(file) + ": " + error);
    }

    /** Lines printed under the bar start on a clean line; the next progress draws it again. */
    private void clearBar() {
      if (barShown) {
        out.print("\r\033[2K");
        out.flush();
        barShown = false;
      }
    }

    /** The last bar stays on screen, its line ended. */
    void endBar() {
      if (barShown) {
        out.println();
        barShown = false;
      }
    }
  }
}
