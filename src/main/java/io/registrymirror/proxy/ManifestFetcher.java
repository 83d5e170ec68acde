package io.registrymirror.proxy;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.Reference;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.concurrent.SingleFlight;
import io.vertx.core.Future;

/**
 * Manifests by digest: from the store, else one upstream GET per manifest and repository however
 * many ask at once (clients, or the warming of a moved tag), verified, then stored for good.
 * The fetched bytes are held only until stored: clients are served from the store.
 */
public final class ManifestFetcher {

  private final ManifestStore store;
  private final CacheWrites writes;
  /** Keyed by repository too: upstream may know a digest in one repository and not another. */
  private final SingleFlight<String, Descriptor> fetches = new SingleFlight<>();

  /** @param writes how a failed write is reported: the verified manifest is served all the same */
  public ManifestFetcher(ManifestStore store, CacheWrites writes) {
    this.store = store;
    this.writes = writes;
  }

  /** The bytes, for a caller that reads them: from the store when it is there, else fetched first. */
  public Future<Manifest> get(Target target, Digest digest, String accept) {
    return store.load(digest).compose(found -> found.isPresent()
        ? Future.succeededFuture(found.get())
        : fetch(target, digest, accept).compose(d -> store.load(digest)).map(stored -> stored.orElseThrow(
            () -> OciError.UNAVAILABLE.exception("manifest " + digest + " could not be stored; retry"))));
  }

  /** From upstream, with {@code accept} as its Accept header, into the store. */
  public Future<Descriptor> fetch(Target target, Digest digest, String accept) {
    return fetches.run(target + "@" + digest, () -> target.upstream()
        .getManifest(target.name(), new Reference.ByDigest(digest), accept,
            m -> writes.optional("manifest", store.put(m)).map(v -> m.descriptor())));
  }
}
