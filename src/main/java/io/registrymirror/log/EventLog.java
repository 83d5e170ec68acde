package io.registrymirror.log;

import java.lang.System.Logger;
import java.lang.System.Logger.Level;

/**
 * Structured log events in logfmt: {@code event=blob.filled digest=sha256:… bytes=123 ms=45}.
 * One line per event, so that log pipelines can parse every field without a grammar.
 */
public final class EventLog {

  private final Logger logger;

  private EventLog(Logger logger) {
    this.logger = logger;
  }

  public static EventLog of(Class<?> type) {
    return new EventLog(System.getLogger(type.getName()));
  }

  public void debug(String event, Object... fields) {
    log(Level.DEBUG, null, event, fields);
  }

  public void info(String event, Object... fields) {
    log(Level.INFO, null, event, fields);
  }

  public void warn(String event, Object... fields) {
    log(Level.WARNING, null, event, fields);
  }

  public void error(String event, Throwable cause, Object... fields) {
    log(Level.ERROR, cause, event, fields);
  }

  private void log(Level level, Throwable cause, String event, Object[] fields) {
    if (!logger.isLoggable(level)) {
      return;
    }
    String line = format(event, fields);
    if (cause == null) {
      logger.log(level, line);
    } else {
      logger.log(level, line, cause);
    }
  }

  /** {@code fields} alternates keys and values. */
  public static String format(String event, Object... fields) {
    StringBuilder sb = new StringBuilder("event=").append(event);
    for (int i = 0; i + 1 < fields.length; i += 2) {
      sb.append(' ').append(fields[i]).append('=');
      appendValue(sb, String.valueOf(fields[i + 1]));
    }
    return sb.toString();
  }

  static void appendValue(StringBuilder sb, String v) {
    boolean quote = v.isEmpty();
    for (int i = 0; i < v.length() && !quote; i++) {
      char c = v.charAt(i);
      quote = c <= ' ' || c == '"' || c == '=' || c == '\\';
    }
    if (!quote) {
      sb.append(v);
      return;
    }
    sb.append('"');
    for (int i = 0; i < v.length(); i++) {
      char c = v.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> sb.append(c);
      }
    }
    sb.append('"');
  }
}
