package io.registrymirror.oci;

/**
 * An image as clients write it: {@code [registry/]name[:tag][@digest]}, e.g.
 * {@code docker.io/library/nginx:1.27}, {@code nginx}, or {@code ghcr.io/owner/app@sha256:…}.
 *
 * @param registry the registry named before the repository, or null when none is (the first
 *     component names a registry, as in docker's grammar, when it has a dot or a port or is
 *     {@code localhost})
 * @param name the repository within that registry, as written (Docker Hub's {@code library/}
 *     is added where the registry is chosen)
 * @param reference the digest when one is given, else the tag ({@code latest} when none is)
 */
public record ImageReference(String registry, RepositoryName name, Reference reference) {

  /** Longer than any registry name plus repository, tag and digest. */
  public static final int MAX_LENGTH = 512;

  /**
   * Parses an image reference strictly: no whitespace, no scheme, lowercase repository names.
   *
   * @throws IllegalArgumentException with a message that says what is wrong, fit for the user
   */
  public static ImageReference parse(String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException("the image is empty");
    }
    if (text.length() > MAX_LENGTH) {
      throw new IllegalArgumentException("the image reference is longer than " + MAX_LENGTH + " characters");
    }
    if (text.contains("://")) {
      throw new IllegalArgumentException("an image has no scheme: write registry/name:tag, not a URL");
    }
    String rest = text;
    Reference reference = null;
    int at = rest.indexOf('@');
    if (at >= 0) {
      try {
        reference = new Reference.ByDigest(Digest.parse(rest.substring(at + 1)));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("invalid digest in '" + text + "': " + e.getMessage());
      }
      rest = rest.substring(0, at);
    }
    // A tag's colon comes after the last slash; one before it is a registry's port.
    int colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      String tag = rest.substring(colon + 1);
      if (!Reference.validTag(tag)) {
        throw new IllegalArgumentException("invalid tag '" + tag + "' in '" + text
            + "': letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'");
      }
      // With both, the digest names the content: the tag is only a reminder, as for docker.
      if (reference == null) {
        reference = new Reference.Tag(tag);
      }
      rest = rest.substring(0, colon);
    }
    String registry = null;
    int slash = rest.indexOf('/');
    if (slash > 0) {
      String first = rest.substring(0, slash);
      if (first.contains(".") || first.contains(":") || first.equals("localhost")) {
        registry = first;
        rest = rest.substring(slash + 1);
      }
    }
    if (!RepositoryName.valid(rest)) {
      throw new IllegalArgumentException("invalid repository name '" + rest + "' in '" + text
          + "': lowercase letters, digits and the separators '.', '_', '__', '-' and '/'");
    }
    return new ImageReference(registry, new RepositoryName(rest),
        reference != null ? reference : new Reference.Tag("latest"));
  }

  @Override
  public String toString() {
    String at = reference instanceof Reference.ByDigest ? "@" : ":";
    return (registry == null ? "" : registry + "/") + name + at + reference;
  }
}
