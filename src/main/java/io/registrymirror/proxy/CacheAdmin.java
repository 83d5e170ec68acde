package io.registrymirror.proxy;

import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.store.BlobStore;
import io.registrymirror.store.CacheIndex;
import io.registrymirror.store.ContentKey;
import io.registrymirror.store.ContentKey.Kind;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagRecord;
import io.registrymirror.tags.TagStore;
import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What an operator can see and do to the cache: totals, what each repository has cached (by its
 * tracked tags), and deleting a blob, a manifest or all of a repository.
 */
public final class CacheAdmin {

  private static final EventLog LOG = EventLog.of(CacheAdmin.class);

  /** A repository, as tags are tracked: which upstream, which name. */
  private record Repository(String upstream, RepositoryName name) {}

  private final CacheIndex index;
  private final BlobStore blobs;
  private final TagStore tags;
  private final ImageContent content;

  public CacheAdmin(CacheIndex index, BlobStore blobs, ManifestStore manifests, TagStore tags) {
    this.index = index;
    this.blobs = blobs;
    this.tags = tags;
    this.content = new ImageContent(manifests);
  }

  /** Bytes and entries by kind, the bound, what is kept, the disk. */
  public JsonObject totals() {
    JsonObject out = new JsonObject();
    for (Kind kind : Kind.values()) {
      out.put(kind.label() + "s", new JsonObject().put("count", index.count(kind)).put("bytes", index.bytes(kind)));
    }
    return out.put("maxBytes", index.maxBytes())
        .put("keptEntries", index.keptCount())
        .put("tagsTracked", tags.all().size())
        .put("disk", new JsonObject().put("freeBytes", blobs.diskFree()).put("sizeBytes", blobs.diskSize()))
        .put("indexLoaded", blobs.loaded());
  }

  /**
   * One page of the repositories with tracked tags, by upstream and name: each tag's digest and
   * last pull, and the bytes of the repository's images that are in the cache.
   */
  public Future<JsonObject> repositories(int page, int perPage) {
    Map<Repository, List<Map.Entry<TagKey, TagRecord>>> byRepository = new TreeMap<>(
        Comparator.comparing(Repository::upstream).thenComparing(r -> r.name().value()));
    for (Map.Entry<TagKey, TagRecord> e : tags.all()) {
      byRepository.computeIfAbsent(new Repository(e.getKey().upstream(), e.getKey().name()), r -> new ArrayList<>())
          .add(e);
    }
    List<Map.Entry<Repository, List<Map.Entry<TagKey, TagRecord>>>> all = new ArrayList<>(byRepository.entrySet());
    int from = Math.min(all.size(), (page - 1) * perPage);
    List<Future<JsonObject>> rows = new ArrayList<>();
    for (var e : all.subList(from, Math.min(all.size(), from + perPage))) {
      rows.add(describe(e.getKey(), e.getValue()));
    }
    return Future.all(rows).map(done -> {
      JsonArray out = new JsonArray();
      rows.forEach(r -> out.add(r.result()));
      return new JsonObject().put("repositories", out).put("page", page).put("perPage", perPage)
          .put("total", all.size());
    });
  }

  private Future<JsonObject> describe(Repository repository, List<Map.Entry<TagKey, TagRecord>> tagged) {
    JsonArray tagList = new JsonArray();
    long lastPulled = 0;
    List<Future<Set<ContentKey>>> images = new ArrayList<>();
    tagged.sort(Comparator.comparing(e -> e.getKey().tag()));
    for (Map.Entry<TagKey, TagRecord> e : tagged) {
      TagRecord r = e.getValue();
      lastPulled = Math.max(lastPulled, r.pulledAt());
      tagList.add(new JsonObject().put("tag", e.getKey().tag()).put("digest", r.served().toString())
          .put("cached", index.contains(ContentKey.manifest(r.served())))
          .put("lastPulled", Instant.ofEpochMilli(r.pulledAt()).toString()));
      images.add(content.of(r.served(), true, missing -> {}));
    }
    JsonObject row = new JsonObject().put("upstream", repository.upstream())
        .put("repository", repository.name().value()).put("tags", tagList)
        .put("lastPulled", Instant.ofEpochMilli(lastPulled).toString());
    return Future.all(images).map(done -> {
      Set<ContentKey> keys = new HashSet<>();
      images.forEach(f -> keys.addAll(f.result()));
      return row.put("cachedBytes", cachedBytes(keys));
    });
  }

  private long cachedBytes(Set<ContentKey> keys) {
    long bytes = 0;
    for (ContentKey key : keys) {
      Long size = index.sizeQuietly(key);
      bytes += size == null ? 0 : size;
    }
    return bytes;
  }

  /** Deletes a cached blob: its size, or BLOB_UNKNOWN when it is not cached. */
  public Future<Long> deleteBlob(Digest digest) {
    return delete(ContentKey.blob(digest));
  }

  /** Deletes a cached manifest: its size, or MANIFEST_UNKNOWN when it is not cached. */
  public Future<Long> deleteManifest(Digest digest) {
    return delete(ContentKey.manifest(digest));
  }

  private Future<Long> delete(ContentKey key) {
    return index.delete(key).compose(size -> {
      if (size == null) {
        OciError unknown = key.kind() == Kind.BLOB ? OciError.BLOB_UNKNOWN : OciError.MANIFEST_UNKNOWN;
        return Future.failedFuture(unknown.exception(key + " is not cached"));
      }
      LOG.info("cache.deleted", "what", key, "bytes", size);
      return Future.succeededFuture(size);
    });
  }

  /**
   * Deletes all of a repository: its tag records, and what its tags' images are made of unless
   * an image of another tracked tag uses it too (blobs are shared by digest across repositories).
   */
  public Future<JsonObject> deleteRepository(String upstream, RepositoryName name) {
    Repository repository = new Repository(upstream, name);
    List<Future<Set<ContentKey>>> theirs = new ArrayList<>();
    List<Future<Set<ContentKey>>> others = new ArrayList<>();
    List<TagKey> doomed = new ArrayList<>();
    for (Map.Entry<TagKey, TagRecord> e : tags.all()) {
      boolean ours = e.getKey().upstream().equals(upstream) && e.getKey().name().equals(name);
      (ours ? theirs : others).add(content.of(e.getValue().served(), true, missing -> {}));
      if (ours) {
        doomed.add(e.getKey());
      }
    }
    if (doomed.isEmpty()) {
      return Future.failedFuture(OciError.NAME_UNKNOWN.exception(
          "no tracked tags in " + repository.upstream() + "/" + name.value()));
    }
    return Future.all(new ArrayList<>(theirs)).compose(a -> Future.all(new ArrayList<>(others))).compose(b -> {
      Set<ContentKey> delete = new HashSet<>();
      theirs.forEach(f -> delete.addAll(f.result()));
      others.forEach(f -> delete.removeAll(f.result()));
      AtomicLong bytes = new AtomicLong();
      int[] deleted = new int[Kind.values().length];
      List<Future<Void>> steps = new ArrayList<>();
      doomed.forEach(tag -> steps.add(tags.delete(tag)));
      for (ContentKey key : delete) {
        steps.add(index.delete(key).map(size -> {
          if (size != null) {
            bytes.addAndGet(size);
            deleted[key.kind().ordinal()]++;
          }
          return null;
        }));
      }
      return Future.all(steps).map(done -> {
        LOG.info("cache.repository.deleted", "upstream", upstream, "repository", name.value(),
            "tags", doomed.size(), "bytes", bytes.get());
        return new JsonObject().put("tags", doomed.size()).put("manifests", deleted[Kind.MANIFEST.ordinal()])
            .put("blobs", deleted[Kind.BLOB.ordinal()]).put("bytes", bytes.get());
      });
    });
  }
}
