package io.registrymirror.api;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.registrymirror.metrics.MirrorMetrics;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * How each upstream has been answering lately, in a word, for the status page. The upstream
 * request timers count from start-up, which cannot tell an upstream failing now from one that
 * failed an hour ago; so their counts are noted every {@link #SAMPLE}, and the counts now are
 * compared with those of up to {@link #WINDOW} ago, and of about {@link #LATEST} ago.
 *
 * <p>A failed answer is a 5xx or none at all (refused, timed out, cut off). A 4xx is not: a
 * token challenge (401) or an unknown manifest (404) is an upstream working as it should, and
 * its status class is all the timers keep, so a 429 cannot be told apart from them; the quota
 * left shows that instead.
 */
final class UpstreamHealth {

  static final Duration SAMPLE = Duration.ofSeconds(15);
  static final Duration WINDOW = Duration.ofMinutes(5);
  static final Duration LATEST = Duration.ofMinutes(1);

  /** The status classes of failed answers, as the upstream request timers label them. */
  private static final Set<String> FAILED = Set.of("5xx", "none");

  /** Answers counted since start-up, by upstream, at one moment. */
  private record Sample(long nanos, Map<String, Counts> counts) {

    Counts of(String upstream) {
      return counts.getOrDefault(upstream, Counts.NONE);
    }
  }

  /** Answers of one upstream: all of them, and those that failed. */
  record Counts(long answers, long failed) {

    static final Counts NONE = new Counts(0, 0);

    Counts minus(Counts earlier) {
      return new Counts(answers - earlier.answers, failed - earlier.failed);
    }
  }

  /**
   * One upstream's health: {@code idle} (no answers in the window), {@code down} (every answer
   * of the last minute failed, or of the window when the last minute had none), {@code degraded}
   * (more than one in twenty failed in the window) or {@code ok}; with the window's counts and
   * length. The last minute decides {@code down} so that an upstream that stops answering is
   * shown so within a minute, not once its good answers have left the window.
   */
  record Health(String word, Counts window, Duration over) {}

  private final Vertx vertx;
  private final MeterRegistry registry;
  private final Deque<Sample> samples = new ArrayDeque<>();
  private final long timer;

  UpstreamHealth(Vertx vertx, MeterRegistry registry) {
    this.vertx = vertx;
    this.registry = registry;
    sample();
    this.timer = vertx.setPeriodic(SAMPLE.toMillis(), id -> sample());
  }

  void close() {
    vertx.cancelTimer(timer);
  }

  synchronized Health health(String upstream) {
    long now = System.nanoTime();
    Counts current = counts().getOrDefault(upstream, Counts.NONE);
    Sample oldest = samples.getFirst();
    Counts window = current.minus(oldest.of(upstream));
    Counts latest = current.minus(minuteAgo(now).of(upstream));
    Counts decisive = latest.answers() > 0 ? latest : window;
    String word;
    if (window.answers() == 0) {
      word = "idle";
    } else if (decisive.failed() == decisive.answers()) {
      word = "down";
    } else if (window.failed() * 20 > window.answers()) {
      word = "degraded";
    } else {
      word = "ok";
    }
    return new Health(word, window, Duration.ofNanos(now - oldest.nanos()));
  }

  /** The newest sample taken at least {@link #LATEST} ago, or the oldest while none was. */
  private Sample minuteAgo(long now) {
    for (var descending = samples.descendingIterator(); descending.hasNext(); ) {
      Sample s = descending.next();
      if (now - s.nanos() >= LATEST.toNanos()) {
        return s;
      }
    }
    return samples.getFirst();
  }

  private synchronized void sample() {
    long now = System.nanoTime();
    samples.addLast(new Sample(now, counts()));
    while (now - samples.getFirst().nanos() > WINDOW.toNanos()) {
      samples.removeFirst();
    }
  }

  private Map<String, Counts> counts() {
    Map<String, Counts> counts = new HashMap<>();
    for (Timer t : registry.find(MirrorMetrics.UPSTREAM_REQUESTS).timers()) {
      String upstream = t.getId().getTag("upstream");
      if (upstream == null) {
        continue;
      }
      long failed = FAILED.contains(t.getId().getTag("status")) ? t.count() : 0;
      counts.merge(upstream, new Counts(t.count(), failed),
          (a, b) -> new Counts(a.answers() + b.answers(), a.failed() + b.failed()));
    }
    return counts;
  }
}
