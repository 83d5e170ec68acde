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

  /** How a command ended: its exit status and what it wrote to each stream. */
  public record Result(int exitCode, String stdout, String stderr) {
  }

  /**
   * Runs {@code command} with {@code env} added to this process's environment and returns what
   * it wrote to stdout. A non-zero exit or running past {@code timeout} fails, with both output
   * streams in the message, because that is all there is to go on when a client fails.
   */
  public static String run(Duration timeout, Map<String, String> env, List<String> command) {
    Result result = attempt(timeout, env, command);
    if (result.exitCode() != 0) {
      throw new AssertionError(String.join(" ", command) + " exited with " + result.exitCode()
          + "\nstdout:\n" + result.stdout() + "\nstderr:\n" + result.stderr());
    }
    return result.stdout();
  }

  /**
   * The same for a command that may fail, such as a pull a test expects to be refused: any exit
   * status is returned; only running past {@code timeout} fails.
   */
  public static Result attempt(Duration timeout, Map<String, String> env, List<String> command) {
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
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
          process.destroyForcibly().waitFor();
          throw new AssertionError(String.join(" ", command) + " timed out after " + timeout
              + "\nstdout:\n" + Files.readString(out) + "\nstderr:\n" + Files.readString(err));
        }
        return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
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
