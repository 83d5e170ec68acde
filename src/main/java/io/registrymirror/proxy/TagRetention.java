package io.registrymirror.proxy;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.registrymirror.store.CacheIndex;
import io.registrymirror.store.ContentKey;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.tags.TagContent;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagRecord;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Keeps the content of what tracked tags serve from eviction: the manifest, an index's
 * manifests and their configs, so that they go after the layers; for a pinned tag the layers
 * too, so that its image never goes.
 *
 * <p>What a tag serves is followed through the cached manifests only: one not cached yet cannot
 * be read without fetching it. Such a manifest is kept all the same, and the tag is looked at
 * again the moment it is cached, which on a first pull is just after the tag is resolved.
 */
public final class TagRetention implements TagContent {

  private static final EventLog LOG = EventLog.of(TagRetention.class);

  /** What a tag served when it was last looked at. */
  private record Look(Digest digest, boolean pinned) {}

  private final Vertx vertx;
  private final ImageContent content;
  private final CacheIndex index;
  private final Map<TagKey, Look> looks = new ConcurrentHashMap<>();
  /**
   * Manifests not cached yet, and the tags to look at again once they are. Bounded: a manifest
   * not pulled within the hour (another platform's, typically) is no longer awaited; it stays
   * kept, and its config is found at the tag's next move or the next start.
   */
  private final Cache<ContentKey, Set<TagKey>> awaited = Caffeine.newBuilder()
      .expireAfterWrite(Duration.ofHours(1)).maximumSize(100_000).build();

  public TagRetention(Vertx vertx, ManifestStore manifests, CacheIndex index) {
    this.vertx = vertx;
    this.content = new ImageContent(manifests);
    this.index = index;
    index.listen(new CacheIndex.Listener() {
      @Override
      public void cached(ContentKey key) {
        Set<TagKey> tags = key.kind() == ContentKey.Kind.MANIFEST ? awaited.asMap().remove(key) : null;
        if (tags != null) {
          vertx.runOnContext(v -> tags.forEach(TagRetention.this::lookAgain));
        }
      }
    });
  }

  /** Looks at every tag once, as at start-up, before the cache's bound applies. */
  public Future<Void> start(Iterable<Map.Entry<TagKey, TagRecord>> tags) {
    long started = System.nanoTime();
    List<Future<Void>> all = new ArrayList<>();
    for (Map.Entry<TagKey, TagRecord> e : tags) {
      Look look = new Look(e.getValue().served(), e.getValue().pinned() != null);
      looks.put(e.getKey(), look);
      all.add(look(e.getKey(), look));
    }
    return Future.join(all).<Void>mapEmpty().otherwiseEmpty().onComplete(r -> LOG.info("cache.retention.loaded",
        "tags", all.size(), "kept", index.keptCount(), "ms", (System.nanoTime() - started) / 1_000_000));
  }

  @Override
  public void serves(TagKey key, Digest digest, boolean pinned) {
    Look look = new Look(digest, pinned);
    if (!look.equals(looks.put(key, look))) {
      look(key, look);
    }
  }

  @Override
  public void forgotten(TagKey key) {
    looks.remove(key);
    index.keep(owner(key), Set.of());
  }

  private void lookAgain(TagKey key) {
    Look look = looks.get(key);
    if (look != null) {
      look(key, look);
    }
  }

  private Future<Void> look(TagKey key, Look look) {
    return content.of(look.digest(), look.pinned(), manifest -> {
      awaited.get(manifest, k -> ConcurrentHashMap.newKeySet()).add(key);
      if (index.contains(manifest)) { // cached between the look and now
        awaited.invalidate(manifest);
        vertx.runOnContext(v -> lookAgain(key));
      }
    }).onSuccess(keys -> {
      // A newer look may have started meanwhile: only the tag's current image is kept.
      if (look.equals(looks.get(key))) {
        index.keep(owner(key), keys);
      }
    }).mapEmpty();
  }

  private static String owner(TagKey key) {
    return "tag " + key;
  }
}
