package io.registrymirror.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/**
 * A client daemon (dockerd, containerd) running as a child process with its output in a log
 * file. Stopping it also ends the processes it started itself, such as the containerd that
 * dockerd runs, which would otherwise outlive it.
 */
final class Daemon implements AutoCloseable {

  /**
   * The environment of a client that must not reach the internet: its proxy for every host but
   * loopback is a closed port, so that falling back from the mirror to the real registry fails at
   * once, the same on a machine with internet access as on one without, and never pulls a real
   * image instead. Port 1 (tcpmux) is privileged and served by nothing; Go never proxies loopback.
   */
  static final Map<String, String> OFFLINE = Map.of("HTTPS_PROXY", "http://127.0.0.1:1",
      "HTTP_PROXY", "http://127.0.0.1:1");

  private static final Duration GRACE = Duration.ofSeconds(15);
  private static final int LOG_TAIL_LINES = 40;

  private final String name;
  private final Process process;
  private final Path log;

  private Daemon(String name, Process process, Path log) {
    this.name = name;
    this.process = process;
    this.log = log;
  }

  /**
   * Starts {@code command}, {@link #OFFLINE}, and returns once {@code ready} holds, or fails with
   * the log's tail.
   */
  static Daemon start(String name, List<String> command, Path log, Duration startup, BooleanSupplier ready)
      throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(OFFLINE);
    Process process = builder.start();
    Daemon daemon = new Daemon(name, process, log);
    String why = null;
    try {
      MirrorUnderTest.eventually(startup, () -> !process.isAlive() || ready.getAsBoolean(), name + " to be ready");
      if (!process.isAlive()) {
        why = "exited with " + process.exitValue();
      }
    } catch (AssertionError notReady) {
      why = "not ready within " + startup;
    }
    if (why != null) {
      daemon.close();
      throw new IllegalStateException(name + " " + why + ":\n" + daemon.logTail());
    }
    return daemon;
  }

  /** The end of the daemon's log, for failure messages. */
  String logTail() {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - LOG_TAIL_LINES), lines.size()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Asks the daemon to stop, as its service manager would, and kills it and everything it
   * started if that takes longer than a grace period.
   */
  @Override
  public void close() {
    // Taken before the daemon exits: afterwards its children belong to init and cannot be found.
    List<ProcessHandle> children = process.descendants().toList();
    process.destroy();
    try {
      if (!process.waitFor(GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor();
      }
      for (ProcessHandle child : children) {
        // dockerd stops its containerd itself on the way out; give the child the same grace.
        try {
          child.onExit().get(GRACE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
          child.destroyForcibly();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      children.forEach(ProcessHandle::destroyForcibly);
    } catch (ExecutionException e) {
      throw new IllegalStateException(name + ": cannot wait for a child to exit", e);
    }
  }
}
