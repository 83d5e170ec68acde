package io.registrymirror.store;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Whether the cache can take new files: one is created and deleted under {@code tmp/}, on a
 * worker. A read-only mount or a directory that lost its permissions passes every other check
 * (it exists, it has room) and fails every fill. The answer is kept for a few seconds, so that
 * readiness probes, however frequent, cost the disk at most one file now and then.
 */
public final class CacheProbe {

  private static final long KEEP_NANOS = TimeUnit.SECONDS.toNanos(5);

  private final Vertx vertx;
  private final CacheLayout layout;
  private Future<Void> last;
  private long lastAt;

  public CacheProbe(Vertx vertx, CacheLayout layout) {
    this.vertx = vertx;
    this.layout = layout;
  }

  /** Succeeds when a file could be written under {@code tmp/}, lately; fails with why not. */
  public synchronized Future<Void> writable() {
    long now = System.nanoTime();
    if (last == null || (last.isComplete() && now - lastAt >= KEEP_NANOS)) {
      lastAt = now;
      last = vertx.executeBlocking(() -> {
        Path probe = Files.createTempFile(layout.tmp(), "probe-", ".part");
        Files.delete(probe);
        return null;
      }, false);
    }
    return last;
  }
}
