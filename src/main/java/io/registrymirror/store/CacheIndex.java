package io.registrymirror.store;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.store.ContentKey.Kind;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the cache holds on disk, blobs and manifests with their sizes: the one place that knows
 * whether content is cached, and that keeps the cache within {@code cache.maxSize}.
 *
 * <p>Caffeine's size-bounded policy chooses what goes when the bound is passed (W-TinyLFU:
 * how recently and how often each entry was used; every lookup of a hit counts). An entry
 * weighs its size in KiB, or nothing while something {@linkplain #keep keeps} it (the images of
 * pinned tags, the manifests and configs of tracked tags): Caffeine never evicts an entry of
 * weight zero.
 *
 * <p>Files of evicted entries are deleted on a worker, a batch at a time with one log line per
 * batch. A file somebody is reading (a {@linkplain #hold hold}) is deleted when its last reader
 * lets go. Installing content and deleting it are serialised per key ({@link #lock}), so a blob
 * fetched again right after its eviction is never removed by the eviction's late deletion.
 */
public final class CacheIndex {

  private static final EventLog LOG = EventLog.of(CacheIndex.class);
  private static final int STRIPES = 64;

  /** An entry's size; a new instance whenever its weight must be computed again. */
  private record Size(long bytes) {}

  private record Evicted(ContentKey key, Size size) {}

  private final Vertx vertx;
  private final CacheLayout layout;
  private final MirrorMetrics metrics;
  private final long maxBytes;
  private final Cache<ContentKey, Size> entries;
  private final Map<ContentKey, Integer> kept = new ConcurrentHashMap<>();
  private final Map<String, Set<ContentKey>> keepers = new ConcurrentHashMap<>();
  private final Map<ContentKey, Integer> holds = new ConcurrentHashMap<>();
  private final Set<ContentKey> doomed = ConcurrentHashMap.newKeySet();
  private final ConcurrentLinkedQueue<Evicted> evicted = new ConcurrentLinkedQueue<>();
  private final AtomicBoolean draining = new AtomicBoolean();
  private final Map<Kind, AtomicLong> bytes = new EnumMap<>(Kind.class);
  private final Map<Kind, AtomicLong> counts = new EnumMap<>(Kind.class);
  private final Object[] stripes = new Object[STRIPES];
  private final List<Listener> listeners = new CopyOnWriteArrayList<>();

  /** Told of content newly cached, and of content gone (evicted, deleted, found bad); each call must return quickly. */
  public interface Listener {
    default void cached(ContentKey key) {}

    default void gone(ContentKey key) {}
  }

  /**
   * @param maxBytes the bound, 0 for none; it applies from {@link #bound()}, once the index has
   *     been read from disk and what is kept is known
   */
  public CacheIndex(Vertx vertx, CacheLayout layout, MirrorMetrics metrics, long maxBytes) {
    this.vertx = vertx;
    this.layout = layout;
    this.metrics = metrics;
    this.maxBytes = maxBytes;
    for (Kind kind : Kind.values()) {
      bytes.put(kind, new AtomicLong());
      counts.put(kind, new AtomicLong());
    }
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new Object();
    }
    this.entries = Caffeine.newBuilder()
        .maximumWeight(Long.MAX_VALUE)
        .weigher((ContentKey key, Size size) -> kept.containsKey(key) ? 0 : kib(size.bytes()))
        .evictionListener((ContentKey key, Size size, RemovalCause cause) -> {
          if (key != null && size != null && cause.wasEvicted()) {
            counted(key.kind(), -size.bytes(), -1);
            evicted.add(new Evicted(key, size));
            listeners.forEach(l -> l.gone(key));
            drainSoon();
          }
        })
        .build();
    if (metrics != null) {
      for (Kind kind : Kind.values()) {
        metrics.watchCache(kind.label(), bytes.get(kind)::get, counts.get(kind)::get);
      }
      metrics.watchCacheBound(maxBytes);
    }
  }

  private static int kib(long bytes) {
    return (int) Math.min(Integer.MAX_VALUE, (bytes + 1023) / 1024);
  }

  /** Applies the bound: from now on, and at once for what was read from disk. */
  public void bound() {
    if (maxBytes > 0) {
      entries.policy().eviction().ifPresent(e -> e.setMaximum(Math.max(1, maxBytes / 1024)));
      entries.cleanUp();
    }
  }

  /** The size of cached content, or null; counts as a use of it. */
  public Long size(ContentKey key) {
    Size size = entries.getIfPresent(key);
    return size == null ? null : size.bytes();
  }

  /** The size of cached content, or null, without counting a use. */
  public Long sizeQuietly(ContentKey key) {
    Size size = entries.policy().getIfPresentQuietly(key);
    return size == null ? null : size.bytes();
  }

  /** The bound, 0 for none. */
  public long maxBytes() {
    return maxBytes;
  }

  /** Whether the content is cached, without counting a use. */
  public boolean contains(ContentKey key) {
    return entries.asMap().containsKey(key);
  }

  /** Records content whose file is in place; call under {@link #lock} when installing it. */
  public void put(ContentKey key, long size) {
    boolean[] added = {false};
    entries.asMap().compute(key, (k, old) -> {
      added[0] = old == null;
      counted(k.kind(), size - (old == null ? 0 : old.bytes()), old == null ? 1 : 0);
      return new Size(size);
    });
    if (added[0]) {
      listeners.forEach(l -> l.cached(key));
    }
  }

  public void listen(Listener listener) {
    listeners.add(listener);
  }

  /**
   * Records content found on disk outside the index (a lookup during start-up, a manifest read
   * from its file), unless it is indexed already or an eviction has just deleted its file: the
   * check and the record are under the lock the deletion takes. Blocking: call it on a worker.
   */
  public void found(ContentKey key, Path file) throws IOException {
    if (contains(key)) {
      return;
    }
    synchronized (lock(key)) {
      if (!contains(key) && Files.isRegularFile(file)) {
        put(key, Files.size(file));
      }
    }
  }

  /** Forgets content whose file is gone or bad; its file, if any, is the caller's to delete. */
  public void remove(ContentKey key) {
    boolean[] removed = {false};
    entries.asMap().computeIfPresent(key, (k, old) -> {
      counted(k.kind(), -old.bytes(), -1);
      removed[0] = true;
      return null;
    });
    if (removed[0]) {
      listeners.forEach(l -> l.gone(key));
    }
  }

  /**
   * Deletes cached content on request (an operator's), as an eviction would: its file goes once
   * nobody reads it. Null when it was not cached; else its size.
   */
  public Future<Long> delete(ContentKey key) {
    Size[] removed = {null};
    entries.asMap().computeIfPresent(key, (k, old) -> {
      counted(k.kind(), -old.bytes(), -1);
      removed[0] = old;
      return null;
    });
    if (removed[0] == null) {
      return Future.succeededFuture(null);
    }
    listeners.forEach(l -> l.gone(key));
    return vertx.executeBlocking(() -> {
      deleteUnlessHeld(key, removed[0]);
      return removed[0].bytes();
    }, false);
  }

  /** The lock under which a key's files are installed or deleted. */
  public Object lock(ContentKey key) {
    return stripes[Math.floorMod(key.hashCode(), STRIPES)];
  }

  /**
   * Looks content up and, when it is cached, holds its file until {@link #release}: an eviction
   * meanwhile deletes the file only after the last release. Null when it is not cached.
   */
  public Long hold(ContentKey key) {
    holds.merge(key, 1, Integer::sum);
    Long size = size(key);
    if (size == null) {
      release(key);
    }
    return size;
  }

  public void release(ContentKey key) {
    boolean last = holds.computeIfPresent(key, (k, n) -> n == 1 ? null : n - 1) == null;
    if (last && doomed.remove(key)) {
      vertx.executeBlocking(() -> {
        delete(key, null);
        return null;
      }, false);
    }
  }

  /**
   * Keeps a set of content from eviction for {@code owner} (e.g. a tag), replacing what it kept
   * before; an empty set lets go of everything it kept.
   */
  public synchronized void keep(String owner, Set<ContentKey> keys) {
    Set<ContentKey> before = keys.isEmpty() ? keepers.remove(owner) : keepers.put(owner, Set.copyOf(keys));
    Set<ContentKey> old = before == null ? Set.of() : before;
    for (ContentKey key : keys) {
      if (!old.contains(key)) {
        kept.merge(key, 1, Integer::sum);
        reweigh(key);
      }
    }
    for (ContentKey key : old) {
      if (!keys.contains(key)) {
        kept.computeIfPresent(key, (k, n) -> n == 1 ? null : n - 1);
        reweigh(key);
      }
    }
  }

  /** How many entries something keeps from eviction, cached or still to come. */
  public int keptCount() {
    return kept.size();
  }

  private void reweigh(ContentKey key) {
    entries.asMap().computeIfPresent(key, (k, size) -> new Size(size.bytes()));
  }

  public long bytes(Kind kind) {
    return bytes.get(kind).get();
  }

  public long count(Kind kind) {
    return counts.get(kind).get();
  }

  /** Runs pending evictions now rather than soon; for tests and shutdown. */
  public void cleanUp() {
    entries.cleanUp();
  }

  private void counted(Kind kind, long byteDelta, int countDelta) {
    bytes.get(kind).addAndGet(byteDelta);
    counts.get(kind).addAndGet(countDelta);
  }

  private void drainSoon() {
    if (draining.compareAndSet(false, true)) {
      vertx.executeBlocking(() -> {
        drain();
        return null;
      }, false).onComplete(r -> {
        draining.set(false);
        if (r.failed()) {
          LOG.warn("cache.evict.failed", "error", r.cause().toString());
        }
        if (!evicted.isEmpty()) {
          drainSoon();
        }
      });
    }
  }

  /** On a worker: deletes the files of what was evicted, or dooms those still being read. */
  private void drain() {
    Map<Kind, Integer> n = new EnumMap<>(Kind.class);
    long freed = 0;
    for (Evicted e; (e = evicted.poll()) != null; ) {
      ContentKey key = e.key();
      n.merge(key.kind(), 1, Integer::sum);
      freed += e.size().bytes();
      if (metrics != null) {
        metrics.cacheEvicted(key.kind().label());
      }
      deleteUnlessHeld(key, e.size());
    }
    LOG.info("cache.evicted", "blobs", n.getOrDefault(Kind.BLOB, 0),
        "manifests", n.getOrDefault(Kind.MANIFEST, 0), "bytes", freed,
        "cached", bytes(Kind.BLOB) + bytes(Kind.MANIFEST), "max", maxBytes);
  }

  /** Deletes the files now, or dooms them to go with the last reader's release. */
  private void deleteUnlessHeld(ContentKey key, Size removed) {
    boolean[] held = {false};
    holds.computeIfPresent(key, (k, readers) -> {
      held[0] = true;
      doomed.add(k);
      return readers;
    });
    if (!held[0]) {
      delete(key, removed);
    }
  }

  /**
   * Deletes an evicted entry's files, unless it has been cached again since. The entry that was
   * evicted may still be seen in the index while its eviction completes: only another entry
   * means the content was cached again.
   */
  private void delete(ContentKey key, Size evicted) {
    synchronized (lock(key)) {
      Size now = entries.policy().getIfPresentQuietly(key);
      if (now != null && now != evicted) {
        return;
      }
      for (Path file : files(key)) {
        try {
          Files.deleteIfExists(file);
        } catch (IOException e) {
          LOG.warn("cache.evict.undeletable", "path", file, "error", e.toString());
        }
      }
    }
  }

  /** The body before its type: a manifest's body is never left without its type. */
  private List<Path> files(ContentKey key) {
    return key.kind() == Kind.BLOB ? List.of(layout.blob(key.digest()))
        : List.of(layout.manifest(key.digest()), layout.manifestType(key.digest()));
  }
}
