package io.registrymirror.store;

import io.registrymirror.oci.Digest;

/** A file in the cache by what it holds: a blob or a manifest, and its digest. */
public record ContentKey(Kind kind, Digest digest) {

  public enum Kind {
    BLOB, MANIFEST;

    /** The name metrics and logs use. */
    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  public static ContentKey blob(Digest digest) {
    return new ContentKey(Kind.BLOB, digest);
  }

  public static ContentKey manifest(Digest digest) {
    return new ContentKey(Kind.MANIFEST, digest);
  }

  @Override
  public String toString() {
    return kind.label() + " " + digest;
  }
}
