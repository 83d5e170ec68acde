package io.registrymirror.tags;

import io.registrymirror.cluster.Peers;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import java.time.Duration;

/**
 * Tags between the replicas of a cluster, over the event bus. Each tag has an owner (rendezvous
 * hashing over the replicas, as blobs do); only the owner asks upstream about it, and reports
 * its moves. Another replica whose answer is out of date asks the owner, and every answer the
 * owner gets from upstream is published to all, who record it: every replica answers with the
 * same digest and keeps the same history, which a replica's loss does not take with it.
 */
final class TagExchange {

  private static final EventLog LOG = EventLog.of(TagExchange.class);
  private static final String RESOLVE = "registry-mirror.tags.resolve.";
  private static final String RESOLVED = "registry-mirror.tags.resolved";
  /** Longer than one HEAD upstream may take: past it, this replica asks upstream itself. */
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(30);

  /** What the owner does for the others, and what each replica does with the owner's news. */
  interface Local {
    /** Revalidates a tag here, whoever owns it: a request from another replica is never sent on. */
    Future<Resolution> revalidateHere(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen);

    /** Records what the owner found, without reporting a move (the owner did). */
    Future<Void> record(TagKey key, String accept, Descriptor found, TagMove.Seen seen);
  }

  private final Vertx vertx;
  private final Peers peers;
  private final Upstreams upstreams;

  TagExchange(Vertx vertx, Peers peers, Upstreams upstreams) {
    this.vertx = vertx;
    this.peers = peers;
    this.upstreams = upstreams;
  }

  /** Starts answering the other replicas; nothing when there are none. */
  void serve(Local local) {
    if (peers.self() == null) {
      return;
    }
    vertx.eventBus().<JsonObject>consumer(RESOLVE + peers.self(), message -> answer(local, message));
    vertx.eventBus().<JsonObject>consumer(RESOLVED, message -> {
      JsonObject body = message.body();
      if (peers.self().equals(body.getString("from"))) {
        return;
      }
      TagKey key = key(body);
      if (key != null) {
        local.record(key, body.getString("accept"), descriptor(body), TagMove.Seen.parse(body.getString("seen")))
            .onFailure(err -> LOG.warn("tag.record.failed", "tag", key, "error", err.getMessage()));
      }
    });
  }

  /** The replica that owns the tag, or null when this one does (or there is no cluster). */
  String owner(TagKey key) {
    return peers.owner(key.toString());
  }

  /**
   * Asks the owner to revalidate. Fails with the owner's error (upstream's), or with a
   * {@link ReplyException} when the owner did not answer: then the caller asks upstream itself.
   */
  Future<Descriptor> ask(String owner, TagKey key, String accept, TagMove.Seen seen) {
    JsonObject question = keyJson(key).put("accept", accept).put("seen", seen.label());
    return vertx.eventBus().<JsonObject>request(RESOLVE + owner, question,
            new DeliveryOptions().setSendTimeout(ASK_TIMEOUT.toMillis()))
        .recover(err -> {
          if (err instanceof ReplyException e && e.failureType() == ReplyFailure.RECIPIENT_FAILURE
              && e.failureCode() >= 0 && e.failureCode() < OciError.values().length) {
            return Future.failedFuture(OciError.values()[e.failureCode()].exception(e.getMessage()));
          }
          return Future.failedFuture(err);
        })
        .map(reply -> descriptor(reply.body()));
  }

  /** Whether the owner could not be asked (gone, slow, unknown): the asker then asks upstream. */
  static boolean unanswered(Throwable err) {
    return !(err instanceof RegistryException);
  }

  /** Tells every other replica what upstream said of a tag. */
  void publish(TagKey key, String accept, Descriptor found, TagMove.Seen seen) {
    if (peers.self() == null) {
      return;
    }
    vertx.eventBus().publish(RESOLVED, descriptorJson(keyJson(key), found)
        .put("accept", accept).put("seen", seen.label()).put("from", peers.self()));
  }

  private void answer(Local local, Message<JsonObject> message) {
    JsonObject body = message.body();
    TagKey key = key(body);
    UpstreamClient upstream = key == null ? null : upstreams.byName(key.upstream());
    if (upstream == null) {
      message.fail(OciError.NAME_UNKNOWN.ordinal(), "no such tag or upstream here");
      return;
    }
    local.revalidateHere(upstream, key, body.getString("accept"), TagMove.Seen.parse(body.getString("seen")))
        .onSuccess(resolution -> message.reply(descriptorJson(new JsonObject(), resolution.descriptor())))
        .onFailure(err -> message.fail(err instanceof RegistryException e ? e.error().ordinal() : -1,
            err.getMessage()));
  }

  private static JsonObject keyJson(TagKey key) {
    return new JsonObject().put("upstream", key.upstream()).put("repository", key.name().value()).put("tag", key.tag());
  }

  /** The key a message names; null when it names none (a replica of another version). */
  private static TagKey key(JsonObject body) {
    try {
      return new TagKey(body.getString("upstream"), new RepositoryName(body.getString("repository")),
          body.getString("tag"));
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static JsonObject descriptorJson(JsonObject json, Descriptor d) {
    return json.put("mediaType", d.mediaType()).put("digest", d.digest().toString()).put("size", d.size());
  }

  private static Descriptor descriptor(JsonObject json) {
    return new Descriptor(json.getString("mediaType"), Digest.parse(json.getString("digest")), json.getLong("size"));
  }
}
