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
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Tags between the replicas of a cluster, over the event bus. Each tag has an owner (rendezvous
 * hashing over the replicas, as blobs do); only the owner asks upstream about it, and reports
 * its moves. Another replica whose answer is out of date asks the owner, and every answer the
 * owner gets from upstream is published to all, who record it: every replica answers with the
 * same digest and keeps the same history, which a replica's loss does not take with it. A
 * replica that joins takes the records of another, history included, page by page.
 */
final class TagExchange {

  private static final EventLog LOG = EventLog.of(TagExchange.class);
  private static final String RESOLVE = "registry-mirror.tags.resolve.";
  private static final String RESOLVED = "registry-mirror.tags.resolved";
  private static final String RECORDS = "registry-mirror.tags.records.";
  /** Records per message: about 2.5 KiB each with a history of ten moves. */
  private static final int PAGE = 256;
  /** Longer than one HEAD upstream may take: past it, this replica asks upstream itself. */
  private static final Duration ASK_TIMEOUT = Duration.ofSeconds(30);

  /** What the owner does for the others, and what each replica does with the owner's news. */
  interface Local {
    /** Revalidates a tag here, whoever owns it: a request from another replica is never sent on. */
    Future<Resolution> revalidateHere(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen);

    /** Records what the owner found, without reporting a move (the owner did). */
    Future<Void> record(TagKey key, String accept, Descriptor found, TagMove.Seen seen);

    /** Every tag record held here. */
    Collection<Map.Entry<TagKey, TagRecord>> records();

    /** Takes another replica's record of a tag, unless the one here knows the tag better. */
    Future<Void> adopt(TagKey key, TagRecord theirs);
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
    // Sorting every record for a page is work for a worker, not the event loop.
    vertx.eventBus().<JsonObject>consumer(RECORDS + peers.self(), message ->
        vertx.executeBlocking(() -> page(local, message.body().getString("after")), false)
            .onSuccess(message::reply)
            .onFailure(err -> message.fail(-1, String.valueOf(err.getMessage()))));
  }

  /**
   * Takes the tag records of another serving replica, page by page, and says how many were
   * read: a replica that joins with an empty or old cache knows every tag the cluster tracks,
   * and its history, before the refresher or a pull brings them.
   */
  Future<Integer> catchUp(Local local) {
    String from = peers.replicas().stream().filter(r -> !r.equals(peers.self())).findFirst().orElse(null);
    if (from == null) {
      return Future.succeededFuture(0);
    }
    long started = System.nanoTime();
    return catchUp(local, from, null, 0).onSuccess(n -> LOG.info("tags.caught.up", "from", from, "records", n,
        "ms", (System.nanoTime() - started) / 1_000_000));
  }

  private Future<Integer> catchUp(Local local, String from, String after, int read) {
    return vertx.eventBus().<JsonObject>request(RECORDS + from, new JsonObject().put("after", after),
            new DeliveryOptions().setSendTimeout(ASK_TIMEOUT.toMillis()))
        .compose(reply -> {
          JsonArray page = reply.body().getJsonArray("records", new JsonArray());
          List<Future<Void>> adopted = new ArrayList<>();
          String last = after;
          for (int i = 0; i < page.size(); i++) {
            JsonObject entry = page.getJsonObject(i);
            TagKey key = key(entry);
            if (key != null) {
              last = key.toString();
              adopted.add(local.adopt(key, TagRecord.fromJson(entry.getJsonObject("record"))));
            }
          }
          String next = last;
          int total = read + page.size();
          return Future.join(adopted).transform(done -> page.size() == PAGE && next != null
              ? catchUp(local, from, next, total) : Future.succeededFuture(total));
        });
  }

  /** The records after {@code after} in the order of their keys, at most a page of them. */
  private static JsonObject page(Local local, String after) {
    JsonArray records = new JsonArray();
    local.records().stream()
        .filter(e -> after == null || e.getKey().toString().compareTo(after) > 0)
        .sorted(Comparator.comparing(e -> e.getKey().toString()))
        .limit(PAGE)
        .forEach(e -> records.add(keyJson(e.getKey()).put("record", e.getValue().toJson())));
    return new JsonObject().put("records", records);
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
