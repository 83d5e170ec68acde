package io.registrymirror.log;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.nio.charset.StandardCharsets;
import net.logstash.logback.composite.AbstractFieldJsonProvider;
import net.logstash.logback.composite.loggingevent.KeyValuePairsJsonProvider;
import net.logstash.logback.composite.loggingevent.LogLevelJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggerNameJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggingEventFormattedTimestampJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggingEventJsonProviders;
import net.logstash.logback.composite.loggingevent.MessageJsonProvider;
import net.logstash.logback.composite.loggingevent.StackTraceJsonProvider;
import net.logstash.logback.encoder.LoggingEventCompositeJsonEncoder;
import org.slf4j.LoggerFactory;

/**
 * Where and how the process logs: every line, the mirror's and its libraries' (Vert.x and Netty
 * find SLF4J and log through it), to standard error in one format, text or JSON.
 *
 * <p>Logback finds this class as a service and runs it the first time anything logs, in place
 * of its own configuration: the mirror's YAML is its only configuration, so a {@code
 * logback.xml} that happens to be on a user's class path, or named by {@code
 * -Dlogback.configurationFile}, is never read. Until the YAML is read the format is text at
 * info, so that what happens before (a configuration error included) is logged too.
 */
public final class LogSetup extends ContextAwareBase implements Configurator {

  /** The logger of the access log: one line per request. */
  public static final String ACCESS = "access";

  /** The parent of the mirror's own loggers. */
  private static final String MIRROR = "io.registrymirror";

  @Override
  public ExecutionStatus configure(LoggerContext context) {
    // No access log until the configuration asks for one: before that, there are no requests.
    install(context, false, Level.INFO, false);
    return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
  }

  /**
   * Logs from now on in JSON or text, {@code level} and above, with or without the access log.
   *
   * @param level {@code error}, {@code warn}, {@code info} or {@code debug}
   */
  public static void apply(boolean json, String level, boolean access) {
    install(context(), json, Level.toLevel(level, Level.INFO), access);
  }

  /** Writes out what is pending and stops logging: the last thing the process does. */
  public static void stop() {
    context().stop();
  }

  private static LoggerContext context() {
    return (LoggerContext) LoggerFactory.getILoggerFactory();
  }

  private static void install(LoggerContext context, boolean json, Level level, boolean access) {
    // Drops whatever was there: appenders, levels, and any task that would re-read a file.
    context.reset();
    ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
    stderr.setContext(context);
    stderr.setName("stderr");
    stderr.setTarget("System.err");
    stderr.setEncoder(json ? json(context) : text(context));
    stderr.start();
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.addAppender(stderr);
    // Debug is for the mirror's own events: the libraries' would bury them (Vert.x's router
    // logs a stack trace for every failed request).
    root.setLevel(level.isGreaterOrEqual(Level.INFO) ? level : Level.INFO);
    context.getLogger(MIRROR).setLevel(level);
    // Netty reports every reset connection at debug and some at info; clients hang up all the time.
    context.getLogger("io.netty").setLevel(Level.WARN);
    // Each of the mirror's server instances registers Vert.x's connection gauge again, which
    // Micrometer warns of at every start though the gauge is shared and right
    // (vert-x3/vertx-micrometer-metrics#259).
    context.getLogger("io.micrometer.core.instrument.MeterRegistry").setLevel(Level.ERROR);
    // Hazelcast tells of every connection attempt, and draws its logo, at info; the mirror logs
    // which replicas serve (event cluster.replicas) itself.
    context.getLogger("com.hazelcast").setLevel(Level.WARN);
    // And warns at every start that its CP subsystem (consensus-backed locks, which the mirror
    // does not use) is off.
    context.getLogger("com.hazelcast.cp.CPSubsystem").setLevel(Level.ERROR);
    context.getLogger(ACCESS).setLevel(access ? Level.INFO : Level.OFF);
  }

  private static Encoder<ILoggingEvent> text(LoggerContext context) {
    LogfmtLayout layout = new LogfmtLayout();
    layout.setContext(context);
    layout.start();
    LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
    encoder.setContext(context);
    encoder.setCharset(StandardCharsets.UTF_8);
    encoder.setLayout(layout);
    encoder.start();
    return encoder;
  }

  /**
   * One object per line: {@code ts}, {@code level}, {@code logger}, then the event's fields each
   * at the top level ({@code "event":"blob.filled","bytes":123}), or a library's {@code msg}, and
   * a {@code stack} when there is one.
   */
  private static Encoder<ILoggingEvent> json(LoggerContext context) {
    LoggingEventJsonProviders providers = new LoggingEventJsonProviders();
    LoggingEventFormattedTimestampJsonProvider ts = named(new LoggingEventFormattedTimestampJsonProvider(), "ts");
    ts.setPattern("[ISO_INSTANT]");
    providers.addTimestamp(ts);
    providers.addLogLevel(named(new LogLevelJsonProvider(), "level"));
    LoggerNameJsonProvider logger = named(new LoggerNameJsonProvider(), "logger");
    // The class's own name, as the text format shows it.
    logger.setShortenedLoggerNameLength(0);
    providers.addLoggerName(logger);
    providers.addKeyValuePairs(new KeyValuePairsJsonProvider());
    providers.addMessage(named(new MessageJsonProvider(), "msg"));
    providers.addStackTrace(named(new StackTraceJsonProvider(), "stack"));
    LoggingEventCompositeJsonEncoder encoder = new LoggingEventCompositeJsonEncoder();
    encoder.setContext(context);
    encoder.setProviders(providers);
    // Values are text, numbers and booleans only: no need to look for Jackson modules.
    encoder.setFindAndRegisterJacksonModules(false);
    encoder.start();
    return encoder;
  }

  private static <P extends AbstractFieldJsonProvider<ILoggingEvent>> P named(P provider, String field) {
    provider.setFieldName(field);
    return provider;
  }
}
