package io.registrymirror.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a client's command line to completion, the way a test drives docker, ctr, podman or skopeo. */
public final class Exec {

  private Exec() {
  }

  /**
   * Runs {@code command} with {@code env} added to this process's environment and returns what
   * it wrote to stdout. A non-zero exit or running past {@code timeout} fails, with both output
   * streams in the message, because that is all there is to go on when a client fails.
   */
  public static String run(Duration timeout, Map<String, String> env, List<String> command) {
    try {
      // Files rather than pipes: a chatty client can never block on a full pipe.
      Path out = Files.createTempFile("exec-", ".out");
      Path err = Files.createTempFile("exec-", ".err");
      try {
        ProcessBuilder builder = new ProcessBuilder(command)
            .redirectOutput(out.toFile())
            .redirectError(err.toFile());
        builder.environment().putAll(env);
        Process process = builder.start();
        boolean finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (!finished) {
          process.destroyForcibly().waitFor();
        }
        String stdout = Files.readString(out);
        if (!finished || process.exitValue() != 0) {
          throw new AssertionError(String.join(" ", command)
              + (finished ? " exited with " + process.exitValue() : " timed out after " + timeout)
              + "\nstdout:\n" + stdout + "\nstderr:\n" + Files.readString(err));
        }
        return stdout;
      } finally {
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * Runs a probe or clean-up command and tells whether it exited with 0, never failing: a probe
   * is asked again, and clean-up goes on with its next step regardless.
   */
  static boolean quietly(List<String> command) {
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        return false;
      }
      return process.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
