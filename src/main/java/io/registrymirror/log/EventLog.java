package io.registrymirror.log;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * Structured log events: an event name and its fields, {@code blob.filled digest=sha256:… bytes=123},
 * passed to SLF4J as key-value pairs with {@code event} first. The format {@link LogSetup}
 * installs writes them as one logfmt line or as the top-level fields of one JSON object, so
 * that log pipelines can read every field without a grammar.
 */
public final class EventLog {

  /** The key of the event's name, the first of its fields. */
  public static final String EVENT = "event";

  private final Logger logger;

  private EventLog(Logger logger) {
    this.logger = logger;
  }

  public static EventLog of(Class<?> type) {
    return new EventLog(LoggerFactory.getLogger(type));
  }

  /** Events of a logger that is no class, such as {@code access}. */
  public static EventLog named(String name) {
    return new EventLog(LoggerFactory.getLogger(name));
  }

  /** Whether info events are written at all: callers can then skip gathering their fields. */
  public boolean infoEnabled() {
    return logger.isInfoEnabled();
  }

  public void debug(String event, Object... fields) {
    log(Level.DEBUG, null, event, fields);
  }

  public void info(String event, Object... fields) {
    log(Level.INFO, null, event, fields);
  }

  public void warn(String event, Object... fields) {
    log(Level.WARN, null, event, fields);
  }

  public void error(String event, Throwable cause, Object... fields) {
    log(Level.ERROR, cause, event, fields);
  }

  /** {@code fields} alternates keys and values. */
  private void log(Level level, Throwable cause, String event, Object[] fields) {
    if (!logger.isEnabledForLevel(level)) {
      return;
    }
    LoggingEventBuilder line = logger.atLevel(level).addKeyValue(EVENT, event);
    for (int i = 0; i + 1 < fields.length; i += 2) {
      line = line.addKeyValue(String.valueOf(fields[i]), value(fields[i + 1]));
    }
    if (cause != null) {
      line = line.setCause(cause);
    }
    line.log();
  }

  /**
   * Numbers and booleans stay what they are, to be JSON numbers and booleans; anything else is
   * its text, as logfmt shows it (JSON would otherwise make a path a {@code file://} URI).
   */
  private static Object value(Object v) {
    return v instanceof Number || v instanceof Boolean ? v : String.valueOf(v);
  }
}
