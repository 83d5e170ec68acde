package io.registrymirror.tags;

import io.registrymirror.oci.Digest;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.Locale;

/**
 * A tag found pointing at another manifest than before.
 *
 * @param at when it was seen, in epoch milliseconds
 * @param from the digest the tag named before
 * @param to the digest it names now
 * @param seen how: by a client's pull, or by the background refresher
 */
public record TagMove(long at, Digest from, Digest to, Seen seen) {

  /** What revalidated the tag when the move was seen. */
  public enum Seen {
    PULL, REFRESH;

    /** As written in tag records, logs, webhooks and metric labels: {@code pull}, {@code refresh}. */
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }

    static Seen parse(String label) {
      return valueOf(label.toUpperCase(Locale.ROOT));
    }
  }

  public JsonObject toJson() {
    return new JsonObject()
        .put("at", Instant.ofEpochMilli(at).toString())
        .put("from", from.toString())
        .put("to", to.toString())
        .put("seen", seen.label());
  }

  public static TagMove fromJson(JsonObject json) {
    return new TagMove(Instant.parse(json.getString("at")).toEpochMilli(),
        Digest.parse(json.getString("from")), Digest.parse(json.getString("to")), Seen.parse(json.getString("seen")));
  }
}
