package io.registrymirror.testing;

import io.registrymirror.log.LogFormatter;
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
  private final Logger logger;
  private final Level level;

  private LogCapture(Logger logger) {
    this.logger = logger;
    this.level = logger.getLevel();
  }

  /** Captures from now on, at every level, debug included. */
  public static LogCapture start() {
    LogCapture capture = new LogCapture(ROOT);
    ROOT.setLevel(Level.ALL);
    ROOT.addHandler(capture);
    return capture;
  }

  /**
   * Captures every logger's warnings and errors from now on, the libraries' too (Vert.x, Netty),
   * at their configured levels.
   */
  public static LogCapture warnings() {
    LogCapture capture = new LogCapture(Logger.getLogger(""));
    capture.setLevel(Level.WARNING);
    capture.logger.addHandler(capture);
    return capture;
  }

  public List<String> lines() {
    return List.copyOf(lines);
  }

  @Override
  public void publish(LogRecord record) {
    if (isLoggable(record)) {
      lines.add(formatter.format(record));
    }
  }

  @Override
  public void flush() {
  }

  @Override
  public void close() {
    logger.removeHandler(this);
    logger.setLevel(level);
  }
}
