package io.registrymirror.oci;

import java.util.List;
import java.util.Set;

/** Manifest media types, and which of them the mirror serves. */
public final class MediaTypes {

  public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
  public static final String DOCKER_MANIFEST_LIST =
      "application/vnd.docker.distribution.manifest.list.v2+json";
  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  public static final String DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
  public static final String DOCKER_SCHEMA1_SIGNED =
      "application/vnd.docker.distribution.manifest.v1+prettyjws";

  /** What the mirror asks upstream for when the client's Accept allows anything. */
  public static final List<String> MODERN_MANIFESTS =
      List.of(OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST);

  /**
   * Schema 1 is gone from current registries and clients and its digests cover only part of the
   * body, so the mirror neither asks for it nor serves it.
   */
  private static final Set<String> SCHEMA1 = Set.of(DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED);

  private MediaTypes() {}

  public static boolean isSchema1(String mediaType) {
    return SCHEMA1.contains(mediaType);
  }

  /** Whether a Content-Type is JSON: {@code application/json} or a {@code +json} type. */
  public static boolean isJson(String contentType) {
    String type = bare(contentType);
    return type.equals("application/json") || type.startsWith("application/") && type.endsWith("+json");
  }

  /** The media type without parameters, lowercased, as the spec says Content-Type should be. */
  public static String bare(String contentType) {
    if (contentType == null) {
      return "";
    }
    int semi = contentType.indexOf(';');
    return (semi < 0 ? contentType : contentType.substring(0, semi)).trim().toLowerCase();
  }
}
