package io.registrymirror.tags;

import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Reference;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.store.AtomicFiles;
import io.registrymirror.store.CacheLayout;
import io.registrymirror.store.CacheWrites;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * Every tag the mirror tracks, in memory, and on disk: what lets the mirror answer for a tag
 * when upstream is down, after a restart too, and keeps each tag's history. All records are
 * read at start-up, so that the refresher and the tag API see every tracked tag. A record on
 * disk that cannot be read counts as absent.
 */
public final class TagStore {

  private static final EventLog LOG = EventLog.of(TagStore.class);

  /** How stale a pull time may be in memory: pulls are counted without a write per request. */
  private static final long PULL_RESOLUTION_MS = 1000;

  private final Vertx vertx;
  private final CacheLayout layout;
  private final CacheWrites writes;
  private final Map<TagKey, TagRecord> memory = new ConcurrentHashMap<>();
  private final int maxTracked;
  private final TagContent content;
  private final AtomicBoolean trimming = new AtomicBoolean();

  /**
   * @param maxTracked how many tags are tracked at most: past it, the least recently pulled
   *     tenth of a percent or more is forgotten, records on disk included
   * @param content told what each tag serves, and when a tag is forgotten
   */
  public TagStore(Vertx vertx, CacheLayout layout, CacheWrites writes, int maxTracked, TagContent content) {
    this.vertx = vertx;
    this.layout = layout;
    this.writes = writes;
    this.maxTracked = maxTracked;
    this.content = content;
  }

  /**
   * Reads every record on disk, on a worker, saying how many. The store answers meanwhile: a
   * record not loaded yet is read by {@link #get}.
   */
  public Future<Void> open() {
    return vertx.executeBlocking(() -> {
      long started = System.nanoTime();
      Path root = layout.tags();
      if (Files.isDirectory(root)) {
        try (Stream<Path> files = Files.walk(root)) {
          files.filter(p -> p.getParent() != null && p.getParent().getFileName().toString().equals("_tags"))
              .forEach(this::load);
        }
      }
      LOG.info("tags.loaded", "tags", memory.size(), "ms", (System.nanoTime() - started) / 1_000_000);
      return null;
    }).compose(v -> trim());
  }

  private void load(Path file) {
    TagKey key = keyOf(file);
    if (key == null) {
      LOG.warn("tags.stray", "path", file);
      return;
    }
    try {
      // The mirror serves while the records load: one a pull has already read or changed stays.
      memory.putIfAbsent(key, TagRecord.fromJson(new JsonObject(Files.readString(file))));
    } catch (IOException | RuntimeException e) {
      LOG.warn("tags.unreadable", "path", file, "error", e.getClass().getSimpleName());
    }
  }

  /** tags/&lt;upstream&gt;/&lt;name&gt;/_tags/&lt;tag&gt;, back to the key it was written for. */
  private TagKey keyOf(Path file) {
    Path relative = layout.tags().relativize(file);
    int n = relative.getNameCount();
    if (n < 4) {
      return null;
    }
    String upstream = relative.getName(0).toString();
    String name = relative.subpath(1, n - 2).toString().replace('\\', '/');
    String tag = relative.getName(n - 1).toString();
    if (!RepositoryName.valid(name) || !Reference.validTag(tag)) {
      return null;
    }
    TagKey key = new TagKey(upstream, new RepositoryName(name), tag);
    return layout.tag(upstream, key.name(), tag).equals(file.normalize()) ? key : null;
  }

  /** The in-memory record only, or null: the hot path, without I/O. */
  public TagRecord cached(TagKey key) {
    return memory.get(key);
  }

  /** From memory, or from disk for a tag no longer tracked, which is then tracked again. */
  public Future<Optional<TagRecord>> get(TagKey key) {
    TagRecord hot = memory.get(key);
    if (hot != null) {
      return Future.succeededFuture(Optional.of(hot));
    }
    Path file = layout.tag(key.upstream(), key.name(), key.tag());
    return vertx.executeBlocking(() -> {
      try {
        memory.putIfAbsent(key, TagRecord.fromJson(new JsonObject(Files.readString(file))));
        return Optional.ofNullable(memory.get(key));
      } catch (IOException | RuntimeException e) {
        return Optional.<TagRecord>empty();
      }
    }, false);
  }

  /** Every tracked tag. */
  public Collection<Map.Entry<TagKey, TagRecord>> all() {
    return memory.entrySet();
  }

  /** Notes that a client asked for the tag, in memory only. */
  public void pulled(TagKey key, long now) {
    TagRecord r = memory.get(key);
    if (r != null) {
      content.serves(key, r.served(), r.pinned() != null);
      if (now - r.pulledAt() >= PULL_RESOLUTION_MS) {
        memory.replace(key, r, r.pulled(now));
      }
    }
  }

  /** A record before and after an {@link #update}; {@code previous} null for a new tag. */
  public record Update(TagRecord previous, TagRecord next) {}

  /**
   * Replaces a tag's record in memory with {@code change(previous)} atomically; {@link #save}
   * writes it. Answers for one tag may come back together (pulls with different {@code Accept}
   * headers, the refresher): each sees the record the one before it left, so a move is seen
   * only once. Call {@link #get} first so that a record on disk is in memory.
   */
  public Update update(TagKey key, UnaryOperator<TagRecord> change) {
    TagRecord[] previous = new TagRecord[1];
    TagRecord next = memory.compute(key, (k, old) -> {
      previous[0] = old;
      return change.apply(old);
    });
    content.serves(key, next.served(), next.pinned() != null);
    if (previous[0] == null && memory.size() > maxTracked) {
      trim();
    }
    return new Update(previous[0], next);
  }

  /**
   * Writes the tag's record as it is in memory when the worker gets to it: a write queued
   * behind a newer update writes the newer record, not the one it was queued for. A failed
   * write does not fail: the record stays in memory and the pull it belongs to is answered.
   */
  public Future<Void> save(TagKey key) {
    Path file = layout.tag(key.upstream(), key.name(), key.tag());
    return writes.optional("tag", vertx.executeBlocking(() -> {
      TagRecord current = memory.get(key);
      if (current != null) {
        AtomicFiles.write(layout, file, current.toJson().encode().getBytes(StandardCharsets.UTF_8));
      }
      return null;
    }, false));
  }

  /** Stops tracking a tag: it leaves memory, and its record stays on disk until it is pulled again. */
  public void forget(TagKey key, TagRecord record) {
    if (memory.remove(key, record)) {
      content.forgotten(key);
    }
  }

  /** Stops tracking a tag and deletes its record, on an operator's request. */
  public Future<Void> delete(TagKey key) {
    if (memory.remove(key) != null) {
      content.forgotten(key);
    }
    Path file = layout.tag(key.upstream(), key.name(), key.tag());
    return vertx.executeBlocking(() -> Files.deleteIfExists(file), false).mapEmpty();
  }

  /**
   * Past {@code maxTracked}, forgets the least recently pulled tags, with their records on disk,
   * on a worker: a tenth of a percent more than needed, so that one sort serves many new tags.
   */
  private Future<Void> trim() {
    if (memory.size() <= maxTracked || !trimming.compareAndSet(false, true)) {
      return Future.succeededFuture();
    }
    return vertx.executeBlocking(() -> {
      int excess = memory.size() - maxTracked + maxTracked / 1000;
      List<Map.Entry<TagKey, TagRecord>> oldest = memory.entrySet().stream()
          .sorted(Comparator.comparingLong(e -> e.getValue().pulledAt()))
          .limit(Math.max(0, excess)).toList();
      for (Map.Entry<TagKey, TagRecord> e : oldest) {
        if (memory.remove(e.getKey(), e.getValue())) {
          content.forgotten(e.getKey());
          Files.deleteIfExists(layout.tag(e.getKey().upstream(), e.getKey().name(), e.getKey().tag()));
        }
      }
      LOG.info("tags.trimmed", "forgotten", oldest.size(), "tracked", memory.size(), "max", maxTracked);
      return null;
    }, false).onComplete(r -> trimming.set(false)).mapEmpty();
  }
}
