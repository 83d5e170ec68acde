package io.registrymirror.oci;

/** A manifest's exact bytes, never re-serialised, with the media type upstream gave them. */
public record Manifest(Digest digest, String mediaType, byte[] body) {

  /** Clients read at most 4 MiB of a manifest (containerd a little more); nothing larger is served. */
  public static final int MAX_SIZE = 4 * 1024 * 1024;
}
