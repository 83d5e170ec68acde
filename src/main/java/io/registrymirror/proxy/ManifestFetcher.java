package io.registrymirror.proxy;

import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.Reference;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.upstream.SingleFlight;
import io.vertx.core.Future;

/**
 * Manifests by digest: from the store, else one upstream GET per manifest and repository however
 * many ask at once (clients, or the warming of a moved tag), verified, then stored for good.
 */
public final class ManifestFetcher {

  private final ManifestStore store;
  private final CacheWrites writes;
  /** Keyed by repository too: upstream may know a digest in one repository and not another. */
  private final SingleFlight<String, Manifest> fetches = new SingleFlight<>();

  /** @param writes how a failed write is reported: the verified manifest is served all the same */
  public ManifestFetcher(ManifestStore store, CacheWrites writes) {
    this.store = store;
    this.writes = writes;
  }

  /** From the store when it is there, else fetched. */
  public Future<Manifest> get(Target target, Digest digest, String accept) {
    return store.get(digest).compose(found -> found.isPresent()
        ? Future.succeededFuture(found.get())
        : fetch(target, digest, accept));
  }

  /** From upstream, with {@code accept} as its Accept header. */
  public Future<Manifest> fetch(Target target, Digest digest, String accept) {
    return fetches.run(target + "@" + digest, () -> target.upstream()
        .getManifest(target.name(), new Reference.ByDigest(digest), accept)
        .compose(m -> writes.optional("manifest", store.put(m)).map(m)));
  }
}
