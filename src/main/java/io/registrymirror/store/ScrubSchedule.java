package io.registrymirror.store;

import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The running mirror's background scrub ({@code cache.scrubInterval}): a {@link CacheScrub} of
 * the whole cache one interval after start-up, then one interval after each scrub ends, so that
 * two never overlap. It runs on a worker of its own, one file at a time, so that it takes at most
 * one thread and one disk stream from the requests being served.
 */
public final class ScrubSchedule {

  private static final EventLog LOG = EventLog.of(ScrubSchedule.class);
  /** How often a long scrub says how far it has got, besides every tenth of the bytes. */
  private static final Duration LOG_EVERY = Duration.ofMinutes(1);
  /** A scrub of a large cache takes hours: its worker is not stuck, only busy. */
  private static final long MAX_RUN_DAYS = 365;

  private final Vertx vertx;
  private final CacheLayout layout;
  private final CacheIndex index;
  private final MirrorMetrics metrics;
  private final Duration interval;
  private WorkerExecutor worker;
  private volatile long timer = -1;
  private volatile CacheScrub running;
  private volatile boolean closed;

  /** A schedule that does nothing when {@code interval} is zero. */
  public ScrubSchedule(Vertx vertx, CacheLayout layout, CacheIndex index, MirrorMetrics metrics, Duration interval) {
    this.vertx = vertx;
    this.layout = layout;
    this.index = index;
    this.metrics = metrics;
    this.interval = interval;
  }

  public void start() {
    if (interval.isZero()) {
      return;
    }
    worker = vertx.createSharedWorkerExecutor("registry-mirror-scrub", 1, MAX_RUN_DAYS, TimeUnit.DAYS);
    next();
  }

  private void next() {
    if (!closed) {
      timer = vertx.setTimer(interval.toMillis(), id -> scrub());
    }
  }

  private void scrub() {
    if (closed) {
      return;
    }
    CacheScrub scrub = new CacheScrub(layout, index::remove, new Watcher());
    running = scrub;
    LOG.info("cache.scrub.started", "cache", layout.root());
    worker.executeBlocking(scrub::run, true)
        .onSuccess(s -> LOG.info(scrub.stopped() ? "cache.scrub.stopped" : "cache.scrub.done",
            "files", s.files(), "bytes", s.bytes(), "removed", s.removed(), "removed_bytes", s.removedBytes(),
            "failed", s.failed(), "ms", s.millis()))
        .onFailure(e -> LOG.warn("cache.scrub.failed", "cache", layout.root(), "error", e.toString()))
        .onComplete(r -> {
          running = null;
          next();
        });
  }

  /** Cancels the next scrub and stops the one running after the chunk it is reading. */
  public Future<Void> close() {
    closed = true;
    vertx.cancelTimer(timer);
    CacheScrub scrub = running;
    if (scrub != null) {
      scrub.stop();
    }
    return worker == null ? Future.succeededFuture() : worker.close();
  }

  /** Logs and counts on the scrubbing thread; meters are safe to update from any thread. */
  private final class Watcher implements ScrubWatcher {

    private final ScrubPace pace = new ScrubPace(LOG_EVERY);
    private long files;
    private long bytes;

    @Override
    public void progress(ScrubProgress p) {
      metrics.scrubChecked(p.files() - files, p.bytes() - bytes);
      files = p.files();
      bytes = p.bytes();
      // The last tenth is the summary, logged as cache.scrub.done.
      if (p.tenths() < 10 && pace.due(p)) {
        LOG.info("cache.scrub.progress", "percent", p.tenths() * 10, "files", p.files(), "files_total", p.filesTotal(),
            "bytes", p.bytes(), "bytes_total", p.bytesTotal(), "removed", p.removed(), "ms", p.millis());
      }
    }

    @Override
    public void removed(String kind, Path file, long size, String reason) {
      metrics.scrubRemoved(kind);
      LOG.warn("cache.scrub.removed", "kind", kind, "path", file, "bytes", size, "reason", reason);
    }

    @Override
    public void failed(Path file, Exception error) {
      LOG.warn("cache.scrub.unreadable", "path", file, "error", error.toString());
    }
  }
}
