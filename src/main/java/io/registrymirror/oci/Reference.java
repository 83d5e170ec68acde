package io.registrymirror.oci;

import java.util.regex.Pattern;

/** What follows {@code /manifests/}: a tag, or a digest that names exact content. */
public sealed interface Reference {

  Pattern TAG = Pattern.compile("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");

  /** A mutable alias, re-resolved against upstream. */
  record Tag(String value) implements Reference {
    public Tag {
      if (!validTag(value)) {
        throw new IllegalArgumentException("invalid tag");
      }
    }

    @Override
    public String toString() {
      return value;
    }
  }

  /** Immutable content, cacheable for good once verified. */
  record ByDigest(Digest digest) implements Reference {
    @Override
    public String toString() {
      return digest.toString();
    }
  }

  public static boolean validTag(String value) {
    return value != null && TAG.matcher(value).matches();
  }

  /**
   * Parses a reference: anything with a colon must be a digest (a tag cannot contain one).
   *
   * @throws IllegalArgumentException naming which of the two grammars failed
   */
  static Reference parse(String s) {
    if (s.indexOf(':') >= 0) {
      return new ByDigest(Digest.parse(s));
    }
    return new Tag(s);
  }
}
