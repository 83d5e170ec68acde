package io.registrymirror.config;

/**
 * What the mirror logs, and how: every line of the process, its libraries' included, goes to
 * standard error in one format.
 *
 * @param format {@code text}: one logfmt line per event, for people; {@code json}: one JSON
 *     object per line, each field at its top level, for log pipelines
 * @param level the least severe events logged; libraries' debug lines stay off
 * @param access whether every request gets a line of its own, on the {@code access} logger,
 *     whatever the level
 */
public record LogConfig(Format format, Level level, boolean access) {

  /** The shape of each line. */
  public enum Format { TEXT, JSON }

  /** The least severe events logged. */
  public enum Level { ERROR, WARN, INFO, DEBUG }

  public static LogConfig defaults() {
    return new LogConfig(Format.TEXT, Level.INFO, true);
  }

  public LogConfig withFormat(Format format) {
    return new LogConfig(format, level, access);
  }

  public LogConfig withLevel(Level level) {
    return new LogConfig(format, level, access);
  }
}
