package io.registrymirror.log;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.LayoutBase;
import java.util.List;
import java.util.Locale;
import org.slf4j.event.KeyValuePair;

/**
 * The text format: every log line, the mirror's and its libraries', as one logfmt line with a
 * timestamp, level and logger, then the event and its fields (or a library's message as
 * {@code msg}); a stack trace, when there is one, follows on lines of its own.
 */
public final class LogfmtLayout extends LayoutBase<ILoggingEvent> {

  @Override
  public String doLayout(ILoggingEvent event) {
    StringBuilder sb = new StringBuilder(160);
    sb.append("ts=").append(event.getInstant())
        .append(" level=").append(event.getLevel().toString().toLowerCase(Locale.ROOT))
        .append(" logger=").append(shortName(event.getLoggerName()));
    String message = event.getFormattedMessage();
    if (message != null) {
      sb.append(" msg=");
      appendValue(sb, message);
    }
    List<KeyValuePair> pairs = event.getKeyValuePairs();
    if (pairs != null) {
      for (KeyValuePair pair : pairs) {
        sb.append(' ').append(pair.key).append('=');
        appendValue(sb, String.valueOf(pair.value));
      }
    }
    sb.append('\n');
    IThrowableProxy thrown = event.getThrowableProxy();
    if (thrown != null) {
      sb.append(ThrowableProxyUtil.asString(thrown)).append('\n');
    }
    return sb.toString();
  }

  /** A value as it is when it has no space, quote, {@code =} or backslash; quoted and escaped otherwise. */
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

  private static String shortName(String name) {
    int dot = name.lastIndexOf('.');
    return dot < 0 ? name : name.substring(dot + 1);
  }
}
