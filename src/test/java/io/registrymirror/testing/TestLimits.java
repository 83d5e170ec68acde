package io.registrymirror.testing;

import java.time.Duration;

/**
 * The limits every mirror under test is configured with ({@link MirrorUnderTest},
 * {@link MirrorProcess}) and how long a test client waits for an answer, in one place: a test
 * that measures against a limit reads the value the mirror was really given.
 */
public final class TestLimits {

  /** {@code connectTimeout} of the mirrors' upstream: far below the shipped default. */
  public static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(2);
  /** {@code idleTimeout} of the mirrors' upstream: a stall is found in seconds, not minutes. */
  public static final Duration IDLE_TIMEOUT = Duration.ofSeconds(5);
  /** How long a test client waits for one whole answer: beyond every limit above. */
  public static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(60);

  private TestLimits() {
  }

  /** The upstream keys that set the timeouts, as lines of an upstream's block. */
  public static String upstreamTimeoutsYaml() {
    return "connectTimeout: " + CONNECT_TIMEOUT.toSeconds() + "s\nidleTimeout: " + IDLE_TIMEOUT.toSeconds() + "s\n";
  }
}
