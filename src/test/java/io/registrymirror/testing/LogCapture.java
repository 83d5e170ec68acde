package io.registrymirror.testing;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.registrymirror.log.LogSetup;
import io.registrymirror.log.LogfmtLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.slf4j.LoggerFactory;

/**
 * Collects every line the mirror logs while it is open, formatted as an operator would read
 * them in the text format, e.g. to check that a secret never appears in any of them.
 */
public final class LogCapture implements AutoCloseable {

  private final LogfmtLayout layout = new LogfmtLayout();
  private final Queue<String> lines = new ConcurrentLinkedQueue<>();
  private final List<Logger> loggers;
  private final List<Level> levels = new ArrayList<>();
  private final AppenderBase<ILoggingEvent> appender;

  private LogCapture(List<Logger> loggers, Level threshold) {
    this.loggers = loggers;
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    layout.setContext(context);
    layout.start();
    appender = new AppenderBase<>() {
      @Override
      protected void append(ILoggingEvent event) {
        if (event.getLevel().isGreaterOrEqual(threshold)) {
          lines.add(layout.doLayout(event));
        }
      }
    };
    appender.setContext(context);
    appender.start();
    for (Logger logger : loggers) {
      levels.add(logger.getLevel());
      logger.addAppender(appender);
    }
  }

  private static Logger logger(String name) {
    return (Logger) LoggerFactory.getLogger(name);
  }

  /** Captures the mirror's events from now on, at every level, debug included, and the access log. */
  public static LogCapture start() {
    Logger mirror = logger("io.registrymirror");
    Logger access = logger(LogSetup.ACCESS);
    LogCapture capture = new LogCapture(List.of(mirror, access), Level.ALL);
    mirror.setLevel(Level.ALL);
    access.setLevel(Level.INFO);
    return capture;
  }

  /**
   * Captures every logger's warnings and errors from now on, the libraries' too (Vert.x, Netty),
   * at their configured levels.
   */
  public static LogCapture warnings() {
    return new LogCapture(List.of(logger(Logger.ROOT_LOGGER_NAME)), Level.WARN);
  }

  public List<String> lines() {
    return List.copyOf(lines);
  }

  @Override
  public void close() {
    for (int i = 0; i < loggers.size(); i++) {
      loggers.get(i).detachAppender(appender);
      if (loggers.get(i) != logger(Logger.ROOT_LOGGER_NAME)) {
        loggers.get(i).setLevel(levels.get(i));
      }
    }
    appender.stop();
  }
}
