package io.registrymirror.tags;

import io.registrymirror.store.AtomicFiles;
import io.registrymirror.store.CacheLayout;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Tag resolutions, in memory and on disk: what lets the mirror answer for a tag when upstream
 * is down, including after a restart. A record on disk that cannot be read counts as absent.
 */
public final class TagStore {

  private final Vertx vertx;
  private final CacheLayout layout;
  private final Map<TagKey, TagRecord> memory = new ConcurrentHashMap<>();

  public TagStore(Vertx vertx, CacheLayout layout) {
    this.vertx = vertx;
    this.layout = layout;
  }

  /** The in-memory record only, or null: the hot path, without I/O. */
  public TagRecord cached(TagKey key) {
    return memory.get(key);
  }

  public Future<Optional<TagRecord>> get(TagKey key) {
    TagRecord hot = memory.get(key);
    if (hot != null) {
      return Future.succeededFuture(Optional.of(hot));
    }
    Path file = layout.tag(key.upstream(), key.name(), key.tag());
    return vertx.executeBlocking(() -> {
      try {
        TagRecord r = TagRecord.fromJson(new JsonObject(Files.readString(file)));
        memory.putIfAbsent(key, r);
        return Optional.of(memory.get(key));
      } catch (NoSuchFileException e) {
        return Optional.<TagRecord>empty();
      } catch (RuntimeException e) {
        return Optional.<TagRecord>empty();
      }
    }, false);
  }

  public Future<Void> put(TagKey key, TagRecord record) {
    memory.put(key, record);
    Path file = layout.tag(key.upstream(), key.name(), key.tag());
    return vertx.executeBlocking(() -> {
      AtomicFiles.write(layout, file, record.toJson().encode().getBytes(StandardCharsets.UTF_8));
      return null;
    }, false);
  }
}
