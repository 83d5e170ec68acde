package io.registrymirror;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.cluster.ClusterVertx;
import io.registrymirror.config.ConfigException;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.LogConfig;
import io.registrymirror.config.MirrorConfig;
import io.registrymirror.log.EventLog;
import io.registrymirror.log.LogSetup;
import io.registrymirror.metrics.MeterRegistries;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.micrometer.MicrometerMetricsFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/** Command line: {@code java -jar registry-mirror.jar [--config FILE]}, or a subcommand. */
public final class Main {

  private static final String USAGE = """
      usage: java -jar registry-mirror.jar [--config FILE]
             java -jar registry-mirror.jar scrub [--config FILE]   (see scrub --help)
             java -jar registry-mirror.jar prefetch [--mirror URL] [--token TOKEN] [--platform P]... IMAGE...
             java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train

      With no configuration file the mirror listens on 0.0.0.0:5000, caches into ./cache and
      mirrors Docker Hub. MIRROR_LISTEN and MIRROR_CACHE_DIR override listen and cache.dir,
      MIRROR_LOG_FORMAT (text or json) and MIRROR_LOG_LEVEL log.format and log.level.
      SIGTERM or Ctrl-C stops it, letting downloads in progress finish within shutdownGrace.
      prefetch asks a running mirror to pull images into its cache (prefetch --help for more).
      train makes a class-data archive for faster starts (train --help for more).
      """;

  private static final EventLog LOG = EventLog.of(Main.class);

  /** How long stopping may take beyond the grace: fetches cleaning up their files, Vert.x closing. */
  private static final Duration CLEANUP = Duration.ofSeconds(10);

  private Main() {}

  public static void main(String[] args) {
    if (args.length > 0 && args[0].equals("prefetch")) {
      System.exit(PrefetchCommand.run(Arrays.copyOfRange(args, 1, args.length), System.getenv(),
          System.out, System.err, System.console() != null));
    }
    if (args.length > 0 && args[0].equals("train")) {
      System.exit(TrainCommand.run(Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
    }
    if (args.length > 0 && args[0].equals("scrub")) {
      System.exit(ScrubCommand.run(Arrays.copyOfRange(args, 1, args.length), System.getenv(), System.out, System.err,
          System.console() != null));
    }
    Path configFile = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--config", "-c" -> {
          if (i + 1 >= args.length) {
            exit(2, "--config needs a file\n" + USAGE);
          }
          configFile = Path.of(args[++i]);
        }
        case "--help", "-h" -> exit(0, USAGE);
        default -> exit(2, "unknown argument " + args[i] + "\n" + USAGE);
      }
    }
    MirrorConfig config;
    try {
      config = ConfigLoader.load(configFile, System.getenv());
    } catch (ConfigException e) {
      exit(2, "registry-mirror: configuration error: " + e.getMessage());
      return;
    }
    LogConfig log = config.log();
    LogSetup.apply(log.format() == LogConfig.Format.JSON, log.level().name(), log.access());
    PrometheusMeterRegistry prometheus = MeterRegistries.prometheusRegistry();
    // Joining a cluster takes seconds: the start goes on from its callbacks, not a wait.
    Future<Vertx> built = config.cluster() == null ? Future.succeededFuture(vertx(prometheus))
        : ClusterVertx.start(builder(prometheus), options(), config);
    built.onFailure(e -> exit(1, "registry-mirror: cannot join the cluster: " + e.getMessage()))
        .onSuccess(vertx -> serve(vertx, config, prometheus));
  }

  private static void serve(Vertx vertx, MirrorConfig config, PrometheusMeterRegistry prometheus) {
    RegistryMirror.start(vertx, config, prometheus).onFailure(err -> {
      System.err.println("registry-mirror: cannot start: " + err.getMessage());
      vertx.close();
      System.exit(1);
    }).onSuccess(mirror -> {
      // Handled as signals rather than in a shutdown hook: after a hook the JVM exits with 143,
      // and halting it with 0 from the hook would cut the other hooks short (e.g. JFR's dump).
      AtomicBoolean stopping = new AtomicBoolean();
      SignalHandler stop = signal -> {
        if (stopping.compareAndSet(false, true)) {
          System.exit(stop(mirror, vertx, config.shutdownGrace()));
        }
      };
      Signal.handle(new Signal("TERM"), stop);
      Signal.handle(new Signal("INT"), stop);
    });
  }

  /** Vert.x as the mirror runs on it, its metrics in {@code prometheus}. */
  static Vertx vertx(PrometheusMeterRegistry prometheus) {
    return builder(prometheus).with(options()).build();
  }

  /** Vert.x's builder with the mirror's meters: a clustered instance is built from it too. */
  public static VertxBuilder builder(PrometheusMeterRegistry prometheus) {
    return Vertx.builder().withMetrics(new MicrometerMetricsFactory(prometheus));
  }

  /** The mirror's Vert.x options. */
  public static VertxOptions options() {
    // The mirror serves nothing from its class path: no need for Vert.x's file cache, which
    // would otherwise be a directory written outside the cache directory.
    return new VertxOptions().setMetricsOptions(MeterRegistries.vertxOptions())
        .setFileSystemOptions(new FileSystemOptions().setClassPathResolvingEnabled(false).setFileCachingEnabled(false));
  }

  /**
   * On SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C): take no more connections, let answers
   * in progress finish within the grace, let fetches clean up, stop Vert.x, and write the last
   * log lines. Each step is awaited from this thread: closing Vert.x from inside its own future
   * chain would wait on an event loop it is shutting down. A stop on a signal is the normal end
   * of a mirror's life, so the exit status is 0, or 1 if stopping failed.
   */
  private static int stop(RegistryMirror mirror, Vertx vertx, Duration grace) {
    int status = 0;
    try {
      mirror.close(grace).toCompletionStage().toCompletableFuture()
          .get(grace.plus(CLEANUP).toMillis(), TimeUnit.MILLISECONDS);
      vertx.close().toCompletionStage().toCompletableFuture().get(CLEANUP.toMillis(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      LOG.error("mirror.stop.failed", e instanceof ExecutionException ? e.getCause() : e);
      status = 1;
    }
    LogSetup.stop();
    return status;
  }

  private static void exit(int status, String message) {
    (status == 0 ? System.out : System.err).println(message);
    System.exit(status);
  }
}
