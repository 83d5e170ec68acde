package io.registrymirror.proxy;

import io.registrymirror.oci.AcceptedTypes;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.ManifestLinks;
import io.registrymirror.oci.MediaTypes;
import io.registrymirror.oci.Reference;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One image pulled into the cache in the background: its manifest by tag (tracked as a client's
 * pull would be), the manifests of the chosen platforms of an index, then every config and
 * layer blob, a few at a time, through the fills clients share. Its figures are read while it
 * runs, from any thread.
 */
public final class PrefetchJob {

  /** Blobs fetched at once for one job: enough to fill a link, few enough to leave room for clients. */
  static final int BLOBS_AT_ONCE = 4;

  private static final AcceptedTypes ACCEPT_ANY = AcceptedTypes.parse(MediaTypes.MODERN_MANIFESTS);
  private static final String ACCEPT = String.join(", ", MediaTypes.MODERN_MANIFESTS);

  /** Where a job is; a job ends {@code done} or {@code failed}. */
  public enum State {
    QUEUED, RUNNING, DONE, FAILED;

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** What a job runs with. */
  record Services(ManifestService manifests, ManifestFetcher fetcher, BlobService blobs) {}

  private final String id;
  private final String image;
  private final Target target;
  private final Reference reference;
  private final List<String> platforms;
  private final Instant created = Instant.now();

  private State state = State.QUEUED;
  private Digest digest;
  private int manifests;
  private int blobsDone;
  private int blobsTotal;
  private long bytesDone;
  private long bytesTotal;
  private String error;
  private Instant started;
  private Instant finished;

  PrefetchJob(String id, String image, Target target, Reference reference, List<String> platforms) {
    this.id = id;
    this.image = image;
    this.target = target;
    this.reference = reference;
    this.platforms = List.copyOf(platforms);
  }

  public String id() {
    return id;
  }

  public String image() {
    return image;
  }

  public synchronized State state() {
    return state;
  }

  /** The status as the prefetch API shows it. */
  public synchronized JsonObject toJson() {
    JsonObject json = new JsonObject()
        .put("id", id)
        .put("image", image)
        .put("platforms", new JsonArray(new ArrayList<>(platforms)))
        .put("state", state.label())
        .put("manifests", manifests)
        .put("blobs", new JsonObject().put("done", blobsDone).put("total", blobsTotal))
        .put("bytes", new JsonObject().put("done", bytesDone).put("total", bytesTotal))
        .put("created", created.toString());
    if (digest != null) {
      json.put("digest", digest.toString());
    }
    if (started != null) {
      json.put("started", started.toString());
    }
    if (finished != null) {
      json.put("finished", finished.toString());
    }
    if (error != null) {
      json.put("error", error);
    }
    return json;
  }

  /** Runs the job to its end; the future fails with what stopped it, and the job says so too. */
  Future<Void> run(Services services) {
    synchronized (this) {
      state = State.RUNNING;
      started = Instant.now();
    }
    return Future.<Void>succeededFuture()
        .compose(v -> services.manifests().get(target, reference, ACCEPT_ANY, true, false))
        .compose(answer -> {
          synchronized (this) {
            digest = answer.descriptor().digest();
          }
          return services.fetcher().get(target, answer.descriptor().digest(), ACCEPT);
        })
        .compose(top -> images(services, top))
        .compose(images -> blobs(services, images))
        .onComplete(result -> finish(result.failed() ? message(result.cause()) : null));
  }

  /** The image manifests to take: the manifest itself, or the chosen ones of an index. */
  private Future<List<Manifest>> images(Services services, Manifest top) {
    ManifestLinks links = ManifestLinks.of(top);
    if (links.children().isEmpty()) {
      counted(1);
      return Future.succeededFuture(List.of(top));
    }
    List<Digest> chosen = links.children(platforms);
    if (chosen.isEmpty()) {
      List<String> offered = links.children().stream().map(ManifestLinks.Child::platform).distinct().toList();
      return Future.failedFuture(new IllegalArgumentException(
          "the index has no manifest for " + String.join(", ", platforms) + " (it has " + String.join(", ", offered) + ")"));
    }
    counted(1);
    // One after the other: they are small, and an index may name dozens.
    List<Manifest> images = new ArrayList<>();
    Future<Void> chain = Future.succeededFuture();
    for (Digest child : chosen) {
      chain = chain.compose(v -> services.fetcher().get(target, child, ACCEPT)).map(m -> {
        images.add(m);
        counted(1);
        return null;
      });
    }
    return chain.map(v -> images);
  }

  /** Every config and layer blob of the images, each once, {@link #BLOBS_AT_ONCE} at a time. */
  private Future<Void> blobs(Services services, List<Manifest> images) {
    Map<Digest, Long> sizes = new LinkedHashMap<>();
    for (Manifest image : images) {
      sizes.putAll(declaredSizes(image));
    }
    synchronized (this) {
      blobsTotal = sizes.size();
      bytesTotal = sizes.values().stream().mapToLong(Long::longValue).sum();
    }
    Queue<Map.Entry<Digest, Long>> queue = new ConcurrentLinkedQueue<>(sizes.entrySet());
    AtomicBoolean failed = new AtomicBoolean();
    List<Future<Void>> lanes = new ArrayList<>();
    for (int i = 0; i < Math.min(BLOBS_AT_ONCE, sizes.size()); i++) {
      lanes.add(lane(services, queue, failed));
    }
    // Join, not all: the job ends once every fetch it started has ended.
    return Future.join(lanes).mapEmpty();
  }

  /** Takes blobs off the queue one at a time until it is empty or another lane failed. */
  private Future<Void> lane(Services services, Queue<Map.Entry<Digest, Long>> queue, AtomicBoolean failed) {
    Map.Entry<Digest, Long> next = failed.get() ? null : queue.poll();
    if (next == null) {
      return Future.succeededFuture();
    }
    Digest blob = next.getKey();
    return services.blobs().warm(target, blob)
        .compose(v -> services.blobs().isCached(blob) ? Future.<Void>succeededFuture()
            : Future.<Void>failedFuture(new IllegalStateException(
                "blob " + blob + " was fetched but not cached: the cache is full or not writable")))
        .onSuccess(v -> done(next.getValue()))
        .onFailure(err -> failed.set(true))
        .compose(v -> lane(services, queue, failed));
  }

  /**
   * The sizes an image manifest declares for its config and layers, for the bytes to expect;
   * {@link ManifestLinks} says which blobs there are.
   */
  private static Map<Digest, Long> declaredSizes(Manifest image) {
    ManifestLinks links = ManifestLinks.of(image);
    JsonObject json = image.body().toJsonObject();
    Map<Digest, Long> sizes = new LinkedHashMap<>();
    List<Object> descriptors = new ArrayList<>();
    descriptors.add(json.getValue("config"));
    if (json.getValue("layers") instanceof JsonArray layers) {
      layers.forEach(descriptors::add);
    }
    for (Object d : descriptors) {
      if (d instanceof JsonObject o && o.getValue("digest") instanceof String s
          && o.getValue("size") instanceof Number n) {
        sizes.put(Digest.parse(s), Math.max(0, n.longValue()));
      }
    }
    Map<Digest, Long> out = new LinkedHashMap<>();
    links.blobs().forEach(blob -> out.put(blob, sizes.getOrDefault(blob, 0L)));
    return out;
  }

  private synchronized void counted(int manifests) {
    this.manifests += manifests;
  }

  private synchronized void done(long bytes) {
    blobsDone++;
    bytesDone += bytes;
  }

  private synchronized void finish(String failure) {
    state = failure == null ? State.DONE : State.FAILED;
    error = failure;
    finished = Instant.now();
  }

  private static String message(Throwable err) {
    return err.getMessage() != null ? err.getMessage() : err.getClass().getSimpleName();
  }
}
