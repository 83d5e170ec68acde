package io.registrymirror.proxy;

import io.registrymirror.cluster.Peers;
import io.registrymirror.error.OciError;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.Reference;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.tags.ManifestSource;
import io.registrymirror.concurrent.SingleFlight;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.registrymirror.tier.S3Tier;
import io.vertx.core.Future;
import java.util.Optional;

/**
 * The one way manifests get into the store: by digest from the store, else from the object
 * storage tier, else one upstream GET per manifest and repository however many ask at once
 * (clients, or the warming of a moved tag); by tag for a tag whose HEAD named no digest. Verified, then stored for good. The fetched bytes are
 * held only until stored: clients are served from the store.
 */
public final class ManifestFetcher implements ManifestSource {

  /**
   * A stored manifest.
   *
   * @param fetched whether upstream had to be asked for it
   */
  public record Found(Descriptor descriptor, boolean fetched) {}

  private final ManifestStore store;
  private final CacheWrites writes;
  private final S3Tier tier;
  private final Peers peers;
  private final PeerClient peerClient;
  /** Keyed by repository too: upstream may know a digest in one repository and not another. */
  private final SingleFlight<String, Descriptor> fetches = new SingleFlight<>();

  /**
   * @param writes how a failed write is reported: the verified manifest is served all the same
   * @param tier the object storage tier; null without one
   * @param peers who owns a manifest, in a cluster
   * @param peerClient how manifests come from their owner; null without a cluster
   */
  public ManifestFetcher(ManifestStore store, CacheWrites writes, S3Tier tier, Peers peers, PeerClient peerClient) {
    this.peers = peers;
    this.peerClient = peerClient;
    this.store = store;
    this.writes = writes;
    this.tier = tier;
  }

  /**
   * The stored manifest, fetched into the store first when it is not there: from the replica
   * that owns it (in a cluster), else from the object storage tier, else from upstream with
   * {@code accept}.
   */
  public Future<Found> find(Target target, Digest digest, String accept) {
    return find(target, digest, accept, false);
  }

  /**
   * As {@link #find(Target, Digest, String)}; {@code forPeer} when another replica asks, which is
   * never sent on to a third. Such requests share fetches among themselves only: a fetch of
   * theirs never waits on another replica, so two replicas that take each other for the owner
   * cannot wait on each other.
   */
  public Future<Found> find(Target target, Digest digest, String accept, boolean forPeer) {
    return store.find(digest).compose(found -> found.isPresent()
        ? Future.succeededFuture(new Found(found.get(), false))
        : fetches.run((forPeer ? "peer " : "") + target + "@" + digest, () -> fromOwner(target, digest, accept, forPeer)
                .compose(owned -> owned.isPresent() ? Future.succeededFuture(owned) : fromTier(digest))
                .compose(stored -> stored.isPresent()
                    ? Future.succeededFuture(stored.get())
                    : fetch(target, new Reference.ByDigest(digest), accept)))
            .map(d -> new Found(d, true)));
  }

  /** From the replica that owns the digest; empty when this one does, or the owner cannot be reached. */
  private Future<Optional<Descriptor>> fromOwner(Target target, Digest digest, String accept, boolean forPeer) {
    String owner = forPeer ? null : peers.owner(digest);
    if (owner == null) {
      return Future.succeededFuture(Optional.empty());
    }
    // Stored here as well: manifests are small, and every replica serves them by tag.
    return peerClient.getManifest(owner, target, digest, accept,
            m -> writes.optional("manifest", store.put(m)).map(v -> Optional.of(m.descriptor())))
        .recover(err -> err instanceof PeerClient.PeerUnavailable
            ? Future.succeededFuture(Optional.empty()) : Future.failedFuture(err));
  }

  private Future<Optional<Descriptor>> fromTier(Digest digest) {
    return tier == null ? Future.succeededFuture(Optional.empty())
        : tier.getManifest(digest, m -> writes.optional("manifest", store.put(m)).map(v -> m.descriptor()));
  }

  /** The bytes, for a caller that reads them: from the store when it is there, else fetched first. */
  public Future<Manifest> get(Target target, Digest digest, String accept) {
    return find(target, digest, accept).compose(found -> store.load(digest)).map(stored -> stored.orElseThrow(
        () -> OciError.UNAVAILABLE.exception("manifest " + digest + " could not be stored; retry")));
  }

  /**
   * From upstream into the store, once per call: a tag's callers share its revalidation, a
   * digest's share {@link #find}.
   */
  @Override
  public Future<Descriptor> fetch(Target target, Reference ref, String accept) {
    return target.upstream().getManifest(target.name(), ref, accept,
        m -> writes.optional("manifest", store.put(m)).map(v -> {
          writeThrough(m);
          return m.descriptor();
        }));
  }

  /** Copies a manifest just stored, from its file, to the object storage tier. */
  private void writeThrough(Manifest m) {
    if (tier != null) {
      tier.putManifest(m.digest(), m.mediaType(), store.file(m.digest()), m.body().length());
    }
  }
}
