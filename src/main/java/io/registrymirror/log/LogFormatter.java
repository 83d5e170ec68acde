package io.registrymirror.log;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.Formatter;
import java.util.logging.LogRecord;

/**
 * Formats every log record, the mirror's and its libraries', as one logfmt line with a
 * timestamp, level and logger; a stack trace, when there is one, follows on its own lines.
 */
public final class LogFormatter extends Formatter {

  @Override
  public String format(LogRecord record) {
    StringBuilder sb = new StringBuilder(160);
    sb.append("ts=").append(Instant.ofEpochMilli(record.getMillis()))
        .append(" level=").append(record.getLevel().getName().toLowerCase())
        .append(" logger=").append(shortName(record.getLoggerName())).append(' ');
    String message = formatMessage(record);
    if (message.startsWith("event=")) {
      sb.append(message);
    } else {
      sb.append("msg=");
      EventLog.appendValue(sb, message);
    }
    sb.append('\n');
    if (record.getThrown() != null) {
      StringWriter trace = new StringWriter();
      record.getThrown().printStackTrace(new PrintWriter(trace));
      sb.append(trace);
    }
    return sb.toString();
  }

  private static String shortName(String name) {
    if (name == null) {
      return "-";
    }
    int dot = name.lastIndexOf('.');
    return dot < 0 ? name : name.substring(dot + 1);
  }
}
