package io.registrymirror.tags;

import io.registrymirror.oci.Digest;
import io.vertx.core.json.JsonObject;
import java.time.Instant;

/**
 * A tag found pointing at another manifest than before.
 *
 * @param at when it was seen, in epoch milliseconds
 * @param from the digest the tag named before
 * @param to the digest it names now
 * @param seen how: {@code pull} when a client's request revalidated it, {@code refresh} when the
 *     background refresher did
 */
public record TagMove(long at, Digest from, Digest to, String seen) {

  public JsonObject toJson() {
    return new JsonObject()
        .put("at", Instant.ofEpochMilli(at).toString())
        .put("from", from.toString())
        .put("to", to.toString())
        .put("seen", seen);
  }

  public static TagMove fromJson(JsonObject json) {
    return new TagMove(Instant.parse(json.getString("at")).toEpochMilli(),
        Digest.parse(json.getString("from")), Digest.parse(json.getString("to")), json.getString("seen"));
  }
}
