package io.registrymirror.oci;

/** What identifies content: its media type, digest and size, as in an OCI descriptor. */
public record Descriptor(String mediaType, Digest digest, long size) {

  public Descriptor {
    // A handful of media types, held by every tracked tag: one copy of each.
    mediaType = mediaType == null ? null : mediaType.intern();
  }
}
