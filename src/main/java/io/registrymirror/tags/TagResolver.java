package io.registrymirror.tags;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.metrics.EventLog;
import io.registrymirror.oci.AcceptedTypes;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.Reference;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.upstream.SingleFlight;
import io.registrymirror.upstream.UpstreamClient;
import io.vertx.core.Future;
import java.util.Optional;

/**
 * Resolves tags to manifests. Within the upstream's tag TTL the last resolution is trusted;
 * after it, upstream is asked with a HEAD. When upstream cannot answer (down, 5xx, 429) the last
 * known resolution is served instead, marked stale.
 */
public final class TagResolver {

  private static final EventLog LOG = EventLog.of(TagResolver.class);

  private final TagStore tags;
  private final ManifestStore manifests;
  private final SingleFlight<String, Resolution> revalidations = new SingleFlight<>();

  public TagResolver(TagStore tags, ManifestStore manifests) {
    this.tags = tags;
    this.manifests = manifests;
  }

  /** The answer from memory alone, when it is fresh and acceptable; otherwise null. */
  public Resolution fresh(UpstreamClient upstream, TagKey key, AcceptedTypes accept) {
    TagRecord r = tags.cached(key);
    return r != null && isFresh(upstream, r) && accept.accepts(r.descriptor().mediaType())
        ? new Resolution(r.descriptor(), null, Resolution.Source.CACHE) : null;
  }

  public Future<Resolution> resolve(UpstreamClient upstream, TagKey key, AcceptedTypes accept) {
    Resolution hot = fresh(upstream, key, accept);
    if (hot != null) {
      return Future.succeededFuture(hot);
    }
    return tags.get(key).compose(known -> {
      Optional<TagRecord> usable = known.filter(r -> accept.accepts(r.descriptor().mediaType()));
      if (usable.isPresent() && isFresh(upstream, usable.get())) {
        return Future.succeededFuture(
            new Resolution(usable.get().descriptor(), null, Resolution.Source.CACHE));
      }
      String flightKey = key + " " + accept.upstreamHeader();
      return revalidations.run(flightKey, () -> ask(upstream, key, accept, known.orElse(null)))
          .recover(err -> staleIfError(key, usable, err));
    });
  }

  private Future<Resolution> ask(UpstreamClient upstream, TagKey key, AcceptedTypes accept,
      TagRecord previous) {
    RepositoryName name = key.name();
    Reference.Tag tag = new Reference.Tag(key.tag());
    String header = accept.upstreamHeader();
    return upstream.headManifest(name, tag, header).compose(head -> {
      if (head.isPresent()) {
        return Future.succeededFuture(new Resolution(head.get(), null, Resolution.Source.UPSTREAM));
      }
      // Upstream gave no digest on HEAD: the body is needed to know what the tag names.
      return upstream.getManifest(name, tag, header).compose(m -> manifests.put(m).map(v ->
          new Resolution(new Descriptor(m.mediaType(), m.digest(), m.body().length), m,
              Resolution.Source.UPSTREAM)));
    }).compose(resolution -> {
      Descriptor now = resolution.descriptor();
      if (previous != null && !previous.descriptor().digest().equals(now.digest())) {
        LOG.info("tag.moved", "tag", key, "from", previous.descriptor().digest(), "to", now.digest(),
            "seen", "pull");
      }
      return tags.put(key, new TagRecord(now, System.currentTimeMillis())).map(resolution);
    });
  }

  private Future<Resolution> staleIfError(TagKey key, Optional<TagRecord> known, Throwable err) {
    if (known.isPresent() && err instanceof RegistryException e
        && (e.error() == OciError.UNAVAILABLE || e.error() == OciError.TOOMANYREQUESTS)) {
      LOG.warn("tag.stale", "tag", key, "digest", known.get().descriptor().digest(),
          "error", e.getMessage());
      return Future.succeededFuture(
          new Resolution(known.get().descriptor(), null, Resolution.Source.STALE));
    }
    return Future.failedFuture(err);
  }

  private static boolean isFresh(UpstreamClient upstream, TagRecord r) {
    return System.currentTimeMillis() - r.checkedAt() < upstream.config().tagTtl().toMillis();
  }
}
