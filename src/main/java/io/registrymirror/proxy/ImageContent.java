package io.registrymirror.proxy;

import io.registrymirror.oci.Digest;
import io.registrymirror.oci.ManifestLinks;
import io.registrymirror.store.ContentKey;
import io.registrymirror.store.ManifestStore;
import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * What an image in the cache is made of, found by following its cached manifests: the manifest,
 * for an index its manifests, their configs and, when asked, their layers. A manifest not cached
 * cannot be followed without fetching it: it is counted all the same, and reported.
 */
final class ImageContent {

  private final ManifestStore manifests;

  ImageContent(ManifestStore manifests) {
    this.manifests = manifests;
  }

  /**
   * The content of the image {@code digest} names.
   *
   * @param layers whether layers count, or only manifests and configs
   * @param notCached told of each manifest that could not be followed
   */
  Future<Set<ContentKey>> of(Digest digest, boolean layers, Consumer<ContentKey> notCached) {
    Set<ContentKey> keys = ConcurrentHashMap.newKeySet();
    return follow(digest, layers, notCached, keys, true).map(keys);
  }

  private Future<Void> follow(Digest digest, boolean layers, Consumer<ContentKey> notCached,
      Set<ContentKey> keys, boolean top) {
    ContentKey manifest = ContentKey.manifest(digest);
    keys.add(manifest);
    return manifests.load(digest).compose(loaded -> {
      if (loaded.isEmpty()) {
        notCached.accept(manifest);
        return Future.succeededFuture();
      }
      ManifestLinks links;
      try {
        links = ManifestLinks.of(loaded.get());
      } catch (IllegalArgumentException e) {
        return Future.succeededFuture();
      }
      if (links.config() != null) {
        keys.add(ContentKey.blob(links.config()));
      }
      if (layers) {
        links.layers().forEach(layer -> keys.add(ContentKey.blob(layer)));
      }
      List<Future<Void>> children = new ArrayList<>();
      if (top) { // an index's manifests are images, never indexes again
        for (ManifestLinks.Child child : links.children()) {
          children.add(follow(child.digest(), layers, notCached, keys, false));
        }
      }
      return Future.join(children).mapEmpty();
    });
  }
}
