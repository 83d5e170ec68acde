package io.registrymirror.oci;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.ByteBuffer;
import java.security.MessageDigest;

/**
 * A manifest's exact bytes, never re-serialised, with the media type upstream gave them. The
 * body is the one buffer it was read into: hashed, stored and served without another copy.
 */
public record Manifest(Digest digest, String mediaType, Buffer body) {

  /** Clients read at most 4 MiB of a manifest (containerd a little more); nothing larger is served. */
  public static final int MAX_SIZE = 4 * 1024 * 1024;

  public Descriptor descriptor() {
    return new Descriptor(MediaTypes.bare(mediaType), digest, body.length());
  }

  /** The body's bytes in place (a view, not a copy), for hashing and writing. */
  public static ByteBuffer view(Buffer body) {
    return ((BufferInternal) body).getByteBuf().nioBuffer();
  }

  /** The digest of {@code body} by {@code algorithm}, computed on the buffer in place. */
  public static Digest hash(Digest.Algorithm algorithm, Buffer body) {
    MessageDigest md = algorithm.newMessageDigest();
    md.update(view(body));
    return Digest.finish(algorithm, md.digest());
  }
}
