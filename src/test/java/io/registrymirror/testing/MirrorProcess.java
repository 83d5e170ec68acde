package io.registrymirror.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The mirror as its own process, started from {@code Main} as {@code java -jar} would: for what
 * needs a real process, such as {@code kill -9}, a SIGTERM, or tracing the files it opens.
 */
public final class MirrorProcess implements AutoCloseable {

  private static final HttpClient PING = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(1)).build();

  private final Process process;
  private final int port;
  private final Path log;

  private MirrorProcess(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /**
   * Starts a mirror of one upstream named {@code local}, caching into {@code cacheDir}, and
   * waits until it answers. {@code prefix} goes before the java command (e.g. a tracer).
   */
  public static MirrorProcess start(String upstreamUrl, Path cacheDir, Path workDir, List<String> prefix)
      throws IOException, InterruptedException {
    return start(upstreamUrl, cacheDir, workDir, prefix, "");
  }

  /** The same, with more top-level configuration, e.g. {@code limits}. */
  public static MirrorProcess start(String upstreamUrl, Path cacheDir, Path workDir, List<String> prefix,
      String topLevelYaml) throws IOException, InterruptedException {
    return start(upstreamUrl, cacheDir, workDir, prefix, List.of("-Xmx256m"),
        TestLimits.upstreamTimeoutsYaml().indent(4), topLevelYaml);
  }

  /**
   * Starts a mirror as {@link #start} does, with more JVM options (e.g. system properties), more
   * keys for the upstream's section (e.g. credentials) and more top-level configuration.
   */
  public static MirrorProcess startWith(String upstreamUrl, Path cacheDir, Path workDir, List<String> jvmOptions,
      String upstreamYaml, String topLevelYaml) throws IOException, InterruptedException {
    List<String> options = new ArrayList<>(List.of("-Xmx256m"));
    options.addAll(jvmOptions);
    return start(upstreamUrl, cacheDir, workDir, List.of(), options,
        (TestLimits.upstreamTimeoutsYaml() + upstreamYaml).indent(4), topLevelYaml);
  }

  /**
   * Starts a mirror as {@link #start} does, but as shipped: exactly the JVM options in {@code
   * conf/jvm.options} (the heap a deployment really has) and the upstream's default timeouts.
   */
  public static MirrorProcess startAsShipped(String upstreamUrl, Path cacheDir, Path workDir)
      throws IOException, InterruptedException {
    return start(upstreamUrl, cacheDir, workDir, List.of(), shippedJvmOptions(), "", "");
  }

  /** The options in {@code conf/jvm.options}, split on whitespace; {@code #} starts a comment. */
  public static List<String> shippedJvmOptions() throws IOException {
    List<String> options = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of("conf", "jvm.options"))) {
      String text = line.contains("#") ? line.substring(0, line.indexOf('#')) : line;
      for (String option : text.trim().split("\\s+")) {
        if (!option.isEmpty()) {
          options.add(option);
        }
      }
    }
    return options;
  }

  private static MirrorProcess start(String upstreamUrl, Path cacheDir, Path workDir, List<String> prefix,
      List<String> jvmOptions, String upstreamKeys, String topLevelYaml) throws IOException, InterruptedException {
    int port = freePort();
    return startConfigured(port, workDir, prefix, jvmOptions, """
        listen: 127.0.0.1:%d
        cache:
          dir: %s
        upstreams:
          local:
            url: %s
        """.formatted(port, cacheDir, upstreamUrl) + upstreamKeys + topLevelYaml);
  }

  /**
   * Starts a mirror configured by a whole YAML document that listens on 127.0.0.1:{@code port},
   * and waits until it answers.
   */
  public static MirrorProcess startConfigured(int port, Path workDir, List<String> prefix, List<String> jvmOptions,
      String yaml) throws IOException, InterruptedException {
    Path config = workDir.resolve("mirror-" + port + ".yaml");
    Files.writeString(config, yaml);
    Path log = workDir.resolve("mirror-" + port + ".log");
    List<String> command = new ArrayList<>(prefix);
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", classPath(), "io.registrymirror.Main", "--config", config.toString()));
    Process process = new ProcessBuilder(command)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
    MirrorProcess mirror = new MirrorProcess(process, port, log);
    mirror.awaitReady();
    return mirror;
  }

  /** Surefire names the test class path in a property; java.class.path may be a booter jar. */
  public static String classPath() {
    String cp = System.getProperty("surefire.test.class.path");
    return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
  }

  private void awaitReady() throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("mirror exited with " + process.exitValue() + ":\n" + log());
      }
      try {
        HttpResponse<Void> r = PING.send(HttpRequest.newBuilder(URI.create(url() + "/v2/")).build(),
            HttpResponse.BodyHandlers.discarding());
        if (r.statusCode() == 200) {
          return;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      TimeUnit.MILLISECONDS.sleep(50);
    }
    close();
    throw new IllegalStateException("mirror did not answer within 30 s:\n" + log());
  }

  public String url() {
    return "http://127.0.0.1:" + port;
  }

  public String hostPort() {
    return "127.0.0.1:" + port;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  public String log() throws IOException {
    return Files.exists(log) ? Files.readString(log) : "";
  }

  /** SIGKILL: no shutdown hook runs, nothing is flushed or cleaned up. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGTERM, then the exit status once the process is gone (or -1 if it is still running). */
  public int terminate(Duration timeout) throws InterruptedException {
    process.destroy();
    return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      process.waitFor(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
