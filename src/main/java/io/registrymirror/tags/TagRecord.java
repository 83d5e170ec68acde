package io.registrymirror.tags;

import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.vertx.core.json.JsonObject;

/**
 * What a tag resolved to when upstream was last asked.
 *
 * @param descriptor the manifest the tag pointed to
 * @param checkedAt when upstream confirmed it, in epoch milliseconds
 */
public record TagRecord(Descriptor descriptor, long checkedAt) {

  public JsonObject toJson() {
    return new JsonObject()
        .put("digest", descriptor.digest().toString())
        .put("mediaType", descriptor.mediaType())
        .put("size", descriptor.size())
        .put("checkedAt", checkedAt);
  }

  public static TagRecord fromJson(JsonObject json) {
    return new TagRecord(new Descriptor(json.getString("mediaType"),
        Digest.parse(json.getString("digest")), json.getLong("size")), json.getLong("checkedAt"));
  }
}
