package io.registrymirror.oci;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * What a manifest points to: an index's manifests with their platforms, or an image's config and
 * layers. Read once here for everything that follows an image down to its blobs (warming,
 * prefetching, keeping an image's content in the cache).
 *
 * @param children an index's manifests; empty for an image manifest
 * @param config an image's config blob; null for an index (or a manifest without one)
 * @param layers an image's layer blobs, in order
 */
public record ManifestLinks(List<Child> children, Digest config, List<Digest> layers) {

  /** One manifest of an index, with its platform as {@code os/architecture[/variant]} (or ""). */
  public record Child(Digest digest, String platform) {}

  public ManifestLinks {
    children = List.copyOf(children);
    layers = List.copyOf(layers);
  }

  /**
   * Reads the links of a manifest whose body is JSON (every manifest the mirror stores is).
   *
   * @throws IllegalArgumentException if a link is not a valid digest, or the body is no JSON object
   */
  public static ManifestLinks of(Manifest manifest) {
    JsonObject json;
    try {
      json = manifest.body().toJsonObject();
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("manifest " + manifest.digest() + " is not a JSON object", e);
    }
    List<Child> children = new ArrayList<>();
    for (JsonObject child : objects(json.getValue("manifests"))) {
      JsonObject platform = child.getValue("platform") instanceof JsonObject p ? p : new JsonObject();
      children.add(new Child(digest(child), platform(platform)));
    }
    Digest config = json.getValue("config") instanceof JsonObject c ? digest(c) : null;
    List<Digest> layers = new ArrayList<>();
    for (JsonObject layer : objects(json.getValue("layers"))) {
      layers.add(digest(layer));
    }
    return new ManifestLinks(children, config, layers);
  }

  /** The config, then the layers: every blob of an image manifest. */
  public List<Digest> blobs() {
    List<Digest> blobs = new ArrayList<>();
    if (config != null) {
      blobs.add(config);
    }
    blobs.addAll(layers);
    return blobs;
  }

  /** The children whose platform is one of {@code platforms}; all of them when it is empty. */
  public List<Digest> children(List<String> platforms) {
    return children.stream()
        .filter(c -> platforms.isEmpty() || platforms.contains(c.platform()))
        .map(Child::digest)
        .toList();
  }

  private static List<JsonObject> objects(Object value) {
    List<JsonObject> objects = new ArrayList<>();
    if (value instanceof JsonArray array) {
      for (Object item : array) {
        if (item instanceof JsonObject o) {
          objects.add(o);
        }
      }
    }
    return objects;
  }

  private static Digest digest(JsonObject descriptor) {
    Object value = descriptor.getValue("digest");
    if (!(value instanceof String s)) {
      throw new IllegalArgumentException("a descriptor without a digest");
    }
    return Digest.parse(s);
  }

  /** {@code os/architecture[/variant]}, as platforms are written in the configuration. */
  private static String platform(JsonObject p) {
    if (p.isEmpty()) {
      return "";
    }
    String variant = p.getValue("variant") instanceof String v ? v : "";
    return p.getValue("os") + "/" + p.getValue("architecture") + (variant.isEmpty() ? "" : "/" + variant);
  }
}
