package io.registrymirror.tags;

import io.registrymirror.cluster.Peers;
import io.registrymirror.config.TagRule;
import io.registrymirror.config.TagsConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.oci.AcceptedTypes;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Reference;
import io.registrymirror.concurrent.SingleFlight;
import io.registrymirror.upstream.Target;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.Vertx;
import io.vertx.core.Future;
import java.util.Collection;
import java.util.Map;
import java.util.Optional;

/**
 * Resolves tags to manifests and keeps each tag's record. Within the tag's TTL (its rule's, or
 * the upstream's) the last resolution is trusted; after it, upstream is asked with a HEAD. When
 * upstream cannot answer (down, 5xx, 429) the last known resolution is served instead, marked
 * stale. Every answer from upstream is compared with the last one: a move is recorded in the
 * tag's history and reported, whether a pull or the refresher saw it.
 */
public final class TagResolver implements TagExchange.Local {

  private final TagStore tags;
  private final ManifestSource manifests;
  private final TagsConfig config;
  private final TagEvents events;
  private final TagExchange exchange;
  private final SingleFlight<String, Resolution> revalidations = new SingleFlight<>();

  /**
   * @param manifests fetches and stores the manifest of a tag whose HEAD names no digest
   * @param peers the other replicas, whose tags they own; {@link Peers#ALONE} without a cluster
   */
  public TagResolver(Vertx vertx, TagStore tags, ManifestSource manifests, TagsConfig config, TagEvents events,
      Peers peers, Upstreams upstreams) {
    this.tags = tags;
    this.manifests = manifests;
    this.config = config;
    this.events = events;
    this.exchange = new TagExchange(vertx, peers, upstreams);
    exchange.serve(this);
  }

  /** Whether this replica asks upstream about the tag: it owns it, or runs alone. */
  boolean owns(TagKey key) {
    return exchange.owner(key) == null;
  }

  /** The answer from memory alone, when it is fresh and acceptable; otherwise null. */
  public Resolution fresh(UpstreamClient upstream, TagKey key, AcceptedTypes accept) {
    TagRecord r = tags.cached(key);
    if (r == null || !isFresh(upstream, key, r) || !accept.accepts(r.descriptor().mediaType())) {
      return null;
    }
    tags.pulled(key, System.currentTimeMillis());
    return new Resolution(r.descriptor(), Result.HIT, r.pinned());
  }

  /**
   * The answer within the TTL, else upstream's (or the last known one, stale, when upstream
   * cannot answer). Callers ask {@link #fresh} first: this does not repeat it.
   */
  public Future<Resolution> resolve(UpstreamClient upstream, TagKey key, AcceptedTypes accept) {
    return tags.get(key).compose(known -> {
      Optional<TagRecord> usable = known.filter(r -> accept.accepts(r.descriptor().mediaType()));
      tags.pulled(key, System.currentTimeMillis());
      if (usable.isPresent() && isFresh(upstream, key, usable.get())) {
        TagRecord r = usable.get();
        return Future.succeededFuture(new Resolution(r.descriptor(), Result.HIT, r.pinned()));
      }
      return revalidate(upstream, key, accept.upstreamHeader(), TagMove.Seen.PULL)
          .recover(err -> staleIfError(key, usable, err));
    });
  }

  /**
   * Asks upstream what the tag names now, with the {@code Accept} header it was last resolved
   * with, and records the answer: the refresher's way in.
   */
  Future<Resolution> refresh(UpstreamClient upstream, TagKey key, TagRecord record) {
    return revalidate(upstream, key, record.accept(), TagMove.Seen.REFRESH);
  }

  /**
   * One upstream question per tag and Accept header at a time, however many ask at once; in a
   * cluster, asked by the tag's owner only, unless it does not answer.
   */
  private Future<Resolution> revalidate(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen) {
    return revalidations.run(key + " " + accept, () -> {
      String owner = exchange.owner(key);
      if (owner == null) {
        return ask(upstream, key, accept, seen);
      }
      return exchange.ask(owner, key, accept, seen)
          .compose(found -> record(key, accept, found, seen, false))
          .map(next -> new Resolution(next.descriptor(), Result.MISS, next.pinned()))
          .recover(err -> TagExchange.unanswered(err) ? ask(upstream, key, accept, seen) : Future.failedFuture(err));
    });
  }

  /**
   * For another replica: the owner's record when it is within the TTL (the asker's may have
   * lapsed first), else upstream's answer.
   */
  @Override
  public Future<Resolution> revalidateHere(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen) {
    TagRecord r = tags.cached(key);
    if (r != null && accept.equals(r.accept()) && isFresh(upstream, key, r)) {
      return Future.succeededFuture(new Resolution(r.descriptor(), Result.HIT, r.pinned()));
    }
    return revalidations.run(key + " " + accept, () -> ask(upstream, key, accept, seen));
  }

  @Override
  public Future<Void> record(TagKey key, String accept, Descriptor found, TagMove.Seen seen) {
    return record(key, accept, found, seen, false).mapEmpty();
  }

  @Override
  public Collection<Map.Entry<TagKey, TagRecord>> records() {
    return tags.all();
  }

  /**
   * Takes another replica's record when there is none here, or when it knew the tag at least as
   * long and asked upstream at least as recently: a replica never trades a longer or newer view
   * for an older one. The pinning rule applies here as to any record.
   */
  @Override
  public Future<Void> adopt(TagKey key, TagRecord theirs) {
    return tags.get(key).compose(loaded -> {
      TagStore.Update update = tags.update(key, previous -> previous == null
          || theirs.firstSeen() <= previous.firstSeen() && theirs.checkedAt() >= previous.checkedAt()
          ? withPin(key, theirs, previous == null ? theirs : previous)
          : previous);
      return update.next() == update.previous() ? Future.<Void>succeededFuture() : tags.save(key);
    });
  }

  /** Takes the records of another replica of the cluster, if there is one; says how many it read. */
  public Future<Integer> catchUp() {
    return exchange.catchUp(this);
  }

  private Future<Resolution> ask(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen) {
    Reference.Tag tag = new Reference.Tag(key.tag());
    return upstream.headManifest(key.name(), tag, accept).compose(head -> {
      if (head.isPresent()) {
        return Future.succeededFuture(head.get());
      }
      // Upstream gave no digest on HEAD: the body is needed to know what the tag names.
      // Stored, the bytes are served from the store: the resolution does not keep them.
      return manifests.fetch(new Target(upstream, key.name()), tag, accept);
    }).compose(found -> {
      exchange.publish(key, accept, found, seen);
      return record(key, accept, found, seen, true);
    }).map(next -> new Resolution(next.descriptor(), Result.MISS, next.pinned()));
  }

  /**
   * Records what upstream says the tag names now, and reports a move if {@code report} (this
   * replica asked upstream; the others record the owner's answer quietly).
   */
  private Future<TagRecord> record(TagKey key, String accept, Descriptor d, TagMove.Seen seen, boolean report) {
    return tags.get(key).compose(loaded -> {
      // Read first, so that a record on disk (a tag no longer tracked) is the one updated.
      long now = System.currentTimeMillis();
      TagStore.Update update = tags.update(key, previous -> withPin(key, previous == null
          ? TagRecord.first(d, accept, now, null)
          : previous.checked(d, accept, now, seen, config.history()), previous));
      TagRecord next = update.next();
      if (report && update.previous() != null && !update.previous().digest().equals(d.digest())) {
        events.moved(key, next.moves().get(next.moves().size() - 1));
      }
      return tags.save(key).map(next);
    });
  }

  /**
   * Applies the tag's pinning rule: the configured digest, or the one the mirror served before
   * the tag was pinned (the first one seen, for a new tag); none when no rule pins it any more.
   */
  private TagRecord withPin(TagKey key, TagRecord r, TagRecord previous) {
    TagRule rule = config.pin(key.name().value(), key.tag());
    Digest pinned;
    if (rule == null) {
      pinned = null;
    } else if (rule.pinnedDigest() != null) {
      pinned = rule.pinnedDigest();
    } else if (previous != null) {
      pinned = previous.served();
    } else {
      pinned = r.digest();
    }
    return new TagRecord(r.descriptor(), r.accept(), r.firstSeen(), r.checkedAt(), r.changedAt(),
        r.pulledAt(), r.moves(), pinned);
  }

  private Future<Resolution> staleIfError(TagKey key, Optional<TagRecord> known, Throwable err) {
    if (known.isPresent() && err instanceof RegistryException e
        && (e.error() == OciError.UNAVAILABLE || e.error() == OciError.TOOMANYREQUESTS)) {
      TagRecord r = known.get();
      events.servedStale(key, r, e);
      return Future.succeededFuture(new Resolution(r.descriptor(), Result.STALE, r.pinned()));
    }
    return Future.failedFuture(err);
  }

  /** Whether a record is within the tag's TTL. */
  boolean isFresh(UpstreamClient upstream, TagKey key, TagRecord r) {
    return System.currentTimeMillis() - r.checkedAt() < ttlMillis(upstream, key);
  }

  long ttlMillis(UpstreamClient upstream, TagKey key) {
    return config.ttl(upstream.config(), key.name().value(), key.tag()).toMillis();
  }
}
