package io.registrymirror.store;

import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.vertx.core.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Cache writes that a pull can do without: a tag record, a manifest already in hand, a blob
 * that can go straight from upstream to its client. When the disk is full or read-only, the
 * pull is still answered and the write is skipped; the operator hears of it once when writes
 * start failing and once when they work again (not once per pull), and every failure counts in
 * a metric.
 */
public final class CacheWrites {

  private static final EventLog LOG = EventLog.of(CacheWrites.class);

  private final MirrorMetrics metrics;
  private final AtomicBoolean failing = new AtomicBoolean();

  public CacheWrites(MirrorMetrics metrics) {
    this.metrics = metrics;
  }

  /** Succeeds whether {@code write} (of a {@code what}: tag, manifest, blob) does or not. */
  public Future<Void> optional(String what, Future<Void> write) {
    return write.transform(r -> {
      if (r.succeeded()) {
        succeeded();
      } else {
        failed(what, r.cause());
      }
      return Future.succeededFuture();
    });
  }

  /** A write of a {@code what} that failed: counted, and logged if it is the first in a while. */
  public void failed(String what, Throwable cause) {
    metrics.cacheWriteFailed(what);
    if (failing.compareAndSet(false, true)) {
      LOG.warn("cache.write.failing", "what", what, "error", cause.toString());
    }
  }

  /** A write that worked: ends an episode of failures, if one was going on. */
  public void succeeded() {
    if (failing.compareAndSet(true, false)) {
      LOG.info("cache.write.recovered");
    }
  }
}
