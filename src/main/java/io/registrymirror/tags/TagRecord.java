package io.registrymirror.tags;

import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything known about one tag: what it resolves to, since when, and how it moved.
 *
 * @param descriptor the manifest the tag pointed to when upstream was last asked
 * @param accept the {@code Accept} header it was resolved with, for the refresher to ask alike
 * @param firstSeen when the mirror first resolved it, in epoch milliseconds
 * @param checkedAt when upstream last confirmed it
 * @param changedAt when it was last seen to move; {@code firstSeen} if it never did
 * @param pulledAt when a client last asked for it (kept in memory, written with the next check)
 * @param moves its moves, oldest first, the last {@code history} of them
 * @param pinned the digest served whatever upstream says, for a frozen tag; else null
 */
public record TagRecord(Descriptor descriptor, String accept, long firstSeen, long checkedAt,
    long changedAt, long pulledAt, List<TagMove> moves, Digest pinned) {

  public TagRecord {
    moves = sharingDigests(descriptor.digest(), moves);
    // Clients send a few Accept headers, held by every tag: one copy of each.
    accept = accept == null ? null : accept.intern();
  }

  /**
   * The moves, with each digest a neighbour also names held once: a move goes from where the one
   * before it went, and the last goes to the tag's digest. Half the heap of a long history.
   */
  private static List<TagMove> sharingDigests(Digest current, List<TagMove> moves) {
    TagMove[] shared = moves.toArray(TagMove[]::new);
    Digest next = current;
    for (int i = shared.length - 1; i >= 0; i--) {
      TagMove m = shared[i];
      if (m.to() != next && m.to().equals(next)) {
        shared[i] = new TagMove(m.at(), m.from(), next, m.seen());
      }
      next = shared[i].from();
    }
    return List.of(shared);
  }

  /** A tag resolved for the first time; {@code pinned} as for the constructor. */
  public static TagRecord first(Descriptor descriptor, String accept, long now, Digest pinned) {
    return new TagRecord(descriptor, accept, now, now, now, now, List.of(), pinned);
  }

  /** What clients get: the pinned digest for a frozen tag, else upstream's. */
  public Digest served() {
    return pinned != null ? pinned : descriptor.digest();
  }

  public Digest digest() {
    return descriptor.digest();
  }

  /**
   * The record after upstream answered {@code now}: the same digest, or a move, which is kept
   * in the history (at most {@code history} moves).
   */
  public TagRecord checked(Descriptor answer, String acceptHeader, long now, TagMove.Seen seen, int history) {
    if (answer.digest().equals(descriptor.digest())) {
      return new TagRecord(answer, acceptHeader, firstSeen, now, changedAt, pulledAt, moves, pinned);
    }
    List<TagMove> more = new ArrayList<>(moves);
    more.add(new TagMove(now, descriptor.digest(), answer.digest(), seen));
    List<TagMove> kept = more.subList(Math.max(0, more.size() - history), more.size());
    return new TagRecord(answer, acceptHeader, firstSeen, now, now, pulledAt, kept, pinned);
  }

  public TagRecord pulled(long now) {
    return new TagRecord(descriptor, accept, firstSeen, checkedAt, changedAt, now, moves, pinned);
  }

  /** As stored on disk. */
  public JsonObject toJson() {
    return new JsonObject()
        .put("digest", descriptor.digest().toString())
        .put("mediaType", descriptor.mediaType())
        .put("size", descriptor.size())
        .put("accept", accept)
        .put("firstSeen", Instant.ofEpochMilli(firstSeen).toString())
        .put("lastChecked", Instant.ofEpochMilli(checkedAt).toString())
        .put("lastChanged", Instant.ofEpochMilli(changedAt).toString())
        .put("lastPulled", Instant.ofEpochMilli(pulledAt).toString())
        .put("pinned", pinned == null ? null : pinned.toString())
        .put("history", history());
  }

  /**
   * As the tag tracking API lists it: what is served and what upstream names, without the
   * history, of which {@code moves} counts the entries.
   */
  public JsonObject toSummaryJson(TagKey key) {
    return new JsonObject()
        .put("upstream", key.upstream())
        .put("repository", key.name().value())
        .put("tag", key.tag())
        .put("digest", served().toString())
        .put("upstreamDigest", digest().toString())
        .put("pinned", pinned != null)
        .put("mediaType", descriptor.mediaType())
        .put("firstSeen", Instant.ofEpochMilli(firstSeen).toString())
        .put("lastChecked", Instant.ofEpochMilli(checkedAt).toString())
        .put("lastChanged", Instant.ofEpochMilli(changedAt).toString())
        .put("lastPulled", Instant.ofEpochMilli(pulledAt).toString())
        .put("moves", moves.size());
  }

  /** As the tag tracking API gives one tag: the summary's fields and its history of moves. */
  public JsonObject toDetailJson(TagKey key) {
    JsonObject json = toSummaryJson(key);
    json.remove("moves");
    return json.put("history", history());
  }

  private JsonArray history() {
    JsonArray history = new JsonArray();
    moves.forEach(m -> history.add(m.toJson()));
    return history;
  }

  public static TagRecord fromJson(JsonObject json) {
    Descriptor d = new Descriptor(json.getString("mediaType"), Digest.parse(json.getString("digest")),
        json.getLong("size"));
    List<TagMove> moves = new ArrayList<>();
    JsonArray history = json.getJsonArray("history", new JsonArray());
    for (int i = 0; i < history.size(); i++) {
      moves.add(TagMove.fromJson(history.getJsonObject(i)));
    }
    long checked = time(json, "lastChecked");
    String pinned = json.getString("pinned");
    return new TagRecord(d, json.getString("accept", ""), time(json, "firstSeen"), checked,
        time(json, "lastChanged"), time(json, "lastPulled"), moves, pinned == null ? null : Digest.parse(pinned));
  }

  private static long time(JsonObject json, String field) {
    return Instant.parse(json.getString(field)).toEpochMilli();
  }
}
