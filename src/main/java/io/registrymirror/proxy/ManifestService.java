package io.registrymirror.proxy;

import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.oci.AcceptedTypes;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.Reference;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.tags.Resolution;
import io.registrymirror.tags.TagKey;
import io.registrymirror.tags.TagResolver;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;

/**
 * Manifests through the cache. By digest they are immutable: once fetched and verified they are
 * served without asking upstream again. By tag, the {@link TagResolver} decides the digest.
 */
public final class ManifestService {

  private final ManifestStore store;
  private final TagResolver tags;
  private final ManifestFetcher fetcher;

  public ManifestService(ManifestStore store, ManifestFetcher fetcher, TagResolver tags) {
    this.store = store;
    this.fetcher = fetcher;
    this.tags = tags;
  }

  /**
   * The answer available from memory without any I/O, or null: lets the hot path skip the
   * asynchronous machinery entirely.
   */
  public ManifestAnswer fromMemory(Target target, Reference ref, AcceptedTypes accept) {
    Digest digest;
    if (ref instanceof Reference.ByDigest d) {
      digest = d.digest();
    } else {
      Resolution r = tags.fresh(target.upstream(), key(target, ref), accept);
      if (r == null) {
        return null;
      }
      digest = r.pinned() != null ? r.pinned() : r.descriptor().digest();
    }
    Manifest m = store.cached(digest);
    return m == null ? null : answer(m.descriptor(), Result.HIT);
  }

  /**
   * Resolves and, when {@code body} is set or the bytes are at hand, fetches the manifest;
   * {@code forPeer} when another replica asks (by digest), which is never sent on.
   */
  public Future<ManifestAnswer> get(Target target, Reference ref, AcceptedTypes accept, boolean body,
      boolean forPeer) {
    if (ref instanceof Reference.ByDigest d) {
      return byDigest(target, d.digest(), accept, forPeer);
    }
    return tags.resolve(target.upstream(), key(target, ref), accept).compose(r -> {
      Result result = r.result();
      if (r.pinned() != null && !r.pinned().equals(r.descriptor().digest())) {
        // A frozen tag: what upstream says now is recorded, the pinned manifest is served.
        return byDigest(target, r.pinned(), accept, false)
            .map(a -> new ManifestAnswer(a.descriptor(), a.manifest(), a.file(), result));
      }
      if (!body) {
        // A HEAD is answered from the resolution alone: its bytes are not needed.
        return Future.succeededFuture(answer(r.descriptor(), result));
      }
      return fetcher.find(target, r.descriptor().digest(), accept.upstreamHeaderForDigest())
          .map(f -> answer(r.descriptor(), f.fetched() && result == Result.HIT ? Result.MISS : result));
    });
  }

  private Future<ManifestAnswer> byDigest(Target target, Digest digest, AcceptedTypes accept, boolean forPeer) {
    return fetcher.find(target, digest, accept.upstreamHeaderForDigest(), forPeer)
        .map(f -> answer(f.descriptor(), f.fetched() ? Result.MISS : Result.HIT));
  }

  /** The bytes from memory when they are there, else the file to send them from. */
  private ManifestAnswer answer(Descriptor d, Result result) {
    return new ManifestAnswer(d, store.cached(d.digest()), store.file(d.digest()), result);
  }

  private static TagKey key(Target target, Reference ref) {
    return new TagKey(target.upstream().name(), target.name(), ref.toString());
  }
}
