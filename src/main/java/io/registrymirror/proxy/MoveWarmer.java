package io.registrymirror.proxy;

import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.ManifestLinks;
import io.registrymirror.oci.MediaTypes;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagWarmer;
import io.registrymirror.upstream.Target;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.Future;
import java.util.List;
import java.util.function.Function;

/**
 * Warms the cache when a tag moves: the new manifest, for an index the manifests of the chosen
 * platforms, and their config and layer blobs, one at a time, through the same fills clients
 * use. The next rollout of the tag is then served from the cache.
 */
public final class MoveWarmer implements TagWarmer {

  private static final EventLog LOG = EventLog.of(MoveWarmer.class);
  private static final String ACCEPT = String.join(", ", MediaTypes.MODERN_MANIFESTS);

  private final Upstreams upstreams;
  private final ManifestFetcher manifests;
  private final BlobService blobs;

  public MoveWarmer(Upstreams upstreams, ManifestFetcher manifests, BlobService blobs) {
    this.upstreams = upstreams;
    this.manifests = manifests;
    this.blobs = blobs;
  }

  @Override
  public void warm(TagKey key, Digest digest, List<String> platforms) {
    UpstreamClient upstream = upstreams.byName(key.upstream());
    if (upstream == null) {
      return;
    }
    Target target = new Target(upstream, key.name());
    long started = System.nanoTime();
    manifest(target, digest)
        .compose(m -> {
          ManifestLinks links = ManifestLinks.of(m);
          if (links.children().isEmpty()) {
            return blobsOf(target, links);
          }
          // Only the configured platforms: an index may name a dozen.
          List<Digest> chosen = links.children().stream()
              .filter(c -> platforms.contains(c.platform())).map(ManifestLinks.Child::digest).toList();
          return sequentially(chosen, d -> manifest(target, d).compose(c -> blobsOf(target, ManifestLinks.of(c))));
        })
        .onSuccess(v -> LOG.info("tag.warmed", "tag", key, "digest", digest,
            "ms", (System.nanoTime() - started) / 1_000_000))
        .onFailure(err -> LOG.warn("tag.warm.failed", "tag", key, "digest", digest, "error", err.getMessage()));
  }

  private Future<Manifest> manifest(Target target, Digest digest) {
    return manifests.get(target, digest, ACCEPT);
  }

  private Future<Void> blobsOf(Target target, ManifestLinks manifest) {
    return sequentially(manifest.blobs(), d -> blobs.warm(target, d));
  }

  private static <T> Future<Void> sequentially(List<T> items, Function<T, Future<?>> step) {
    Future<Void> chain = Future.succeededFuture();
    for (T item : items) {
      chain = chain.compose(v -> step.apply(item).mapEmpty());
    }
    return chain;
  }
}
