package io.registrymirror.proxy;

import io.registrymirror.store.CacheLayout;
import io.registrymirror.store.CacheProbe;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.file.FileSystemProps;

/**
 * Whether the cache is ready, for readiness: its index read since start-up, its room, and a test
 * write.
 */
public final class CacheHealth {

  private final Vertx vertx;
  private final CacheLayout layout;
  private final CacheProbe probe;
  private volatile boolean indexed;
  private volatile boolean everWritable;

  public CacheHealth(Vertx vertx, CacheLayout layout) {
    this.vertx = vertx;
    this.layout = layout;
    this.probe = new CacheProbe(vertx, layout);
  }

  /** Whether the index of what is cached has been read since start-up. */
  public boolean indexed() {
    return indexed;
  }

  /** The index is read, or reading it failed and lookups go to the disk: either way, done. */
  public void indexDone() {
    indexed = true;
  }

  /** The file system the cache writes to, read off the event loop. */
  public Future<FileSystemProps> space() {
    return vertx.fileSystem().fsProps(layout.tmp().toString());
  }

  /** Succeeds when a file could be written in the cache, lately; fails with why not. */
  public Future<Void> writable() {
    return probe.writable().onSuccess(v -> everWritable = true);
  }

  /**
   * Whether a file could be written in the cache at some time since start-up. A cache that was
   * never writable is a deployment's mistake (a read-only volume, wrong owner) to be seen at once;
   * one that turns full or read-only later is served past, and stays ready.
   */
  public boolean everWritable() {
    return everWritable;
  }
}
