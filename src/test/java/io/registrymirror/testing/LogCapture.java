package io.registrymirror.testing;

import io.registrymirror.metrics.LogFormatter;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Collects every line the mirror logs while it is open, formatted as an operator would read
 * them, e.g. to check that a secret never appears in any of them.
 */
public final class LogCapture extends Handler implements AutoCloseable {

  private static final Logger ROOT = Logger.getLogger("io.registrymirror");

  private final LogFormatter formatter = new LogFormatter();
  private final Queue<String> lines = new ConcurrentLinkedQueue<>();
  private final Level level = ROOT.getLevel();

  private LogCapture() {
  }

  /** Captures from now on, at every level, debug included. */
  public static LogCapture start() {
    LogCapture capture = new LogCapture();
    ROOT.setLevel(Level.ALL);
    ROOT.addHandler(capture);
    return capture;
  }

  public List<String> lines() {
    return List.copyOf(lines);
  }

  @Override
  public void publish(LogRecord record) {
    lines.add(formatter.format(record));
  }

  @Override
  public void flush() {
  }

  @Override
  public void close() {
    ROOT.removeHandler(this);
    ROOT.setLevel(level);
  }
}
