package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.oci.RepositoryName;

/**
 * A {@code /v2/...} request path split into repository name, endpoint and reference.
 *
 * <p>The path is read from the right, because a repository component may itself be called
 * {@code manifests} or {@code blobs}. It is the raw path: nothing is percent-decoded, so an
 * encoded slash or dot can only fail the name grammar, never change what is addressed.
 */
record ApiPath(Endpoint endpoint, RepositoryName name, String reference) {

  private static final String PREFIX = "/v2/";
  private static final String TAGS_SUFFIX = "/tags/list";

  static ApiPath parse(String rawPath) {
    if (!rawPath.startsWith(PREFIX)) {
      throw notFound();
    }
    String rest = rawPath.substring(PREFIX.length());
    if (rest.endsWith(TAGS_SUFFIX)) {
      return new ApiPath(Endpoint.TAGS, name(rest.substring(0, rest.length() - TAGS_SUFFIX.length())), null);
    }
    int lastSlash = rest.lastIndexOf('/');
    if (lastSlash <= 0) {
      throw notFound();
    }
    String before = rest.substring(0, lastSlash);
    int kindSlash = before.lastIndexOf('/');
    if (kindSlash <= 0) {
      throw notFound();
    }
    Endpoint endpoint = switch (before.substring(kindSlash + 1)) {
      case "manifests" -> Endpoint.MANIFEST;
      case "blobs" -> Endpoint.BLOB;
      case "referrers" -> Endpoint.REFERRERS;
      default -> throw notFound();
    };
    return new ApiPath(endpoint, name(before.substring(0, kindSlash)), rest.substring(lastSlash + 1));
  }

  private static RepositoryName name(String raw) {
    try {
      return new RepositoryName(raw);
    } catch (IllegalArgumentException e) {
      throw OciError.NAME_INVALID.exception(raw.length() > RepositoryName.MAX_LENGTH
          ? "repository name longer than " + RepositoryName.MAX_LENGTH + " characters"
          : "repository name must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*(/...)*");
    }
  }

  private static RuntimeException notFound() {
    return OciError.NAME_UNKNOWN.exception("no such endpoint in the registry API");
  }
}
