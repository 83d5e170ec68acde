package io.registrymirror.oci;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * A content digest, {@code algorithm ":" encoded}, as the image spec defines it.
 *
 * <p>Only the algorithms the mirror can verify are accepted: a digest it cannot check could
 * never be trusted into the cache.
 */
public record Digest(Algorithm algorithm, String hex) {

  /** The registered algorithms, with the exact length of their lowercase-hex encoding. */
  public enum Algorithm {
    SHA256("sha256", "SHA-256", 64),
    SHA512("sha512", "SHA-512", 128);

    private final String id;
    private final String jcaName;
    private final int hexLength;

    Algorithm(String id, String jcaName, int hexLength) {
      this.id = id;
      this.jcaName = jcaName;
      this.hexLength = hexLength;
    }

    public String id() {
      return id;
    }

    public MessageDigest newMessageDigest() {
      try {
        return MessageDigest.getInstance(jcaName);
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("the JVM lacks " + jcaName, e);
      }
    }

    /** Whether {@code hex} is one of this algorithm's digests: its length, in lowercase hex. */
    boolean accepts(String hex) {
      if (hex == null || hex.length() != hexLength) {
        return false;
      }
      for (int i = 0; i < hexLength; i++) {
        char c = hex.charAt(i);
        if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
          return false;
        }
      }
      return true;
    }

    static Algorithm byId(String id) {
      for (Algorithm a : values()) {
        if (a.id.equals(id)) {
          return a;
        }
      }
      return null;
    }
  }

  private static final Pattern GRAMMAR =
      Pattern.compile("[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+");

  public Digest {
    if (algorithm == null || !algorithm.accepts(hex)) {
      throw new IllegalArgumentException("not a " + algorithm + " digest: " + hex);
    }
  }

  /**
   * Parses a digest string.
   *
   * @throws IllegalArgumentException with a message fit for the client when it is malformed or
   *     uses an algorithm the mirror cannot verify
   */
  public static Digest parse(String s) {
    int colon = s == null ? -1 : s.indexOf(':');
    Algorithm algorithm = colon < 0 ? null : Algorithm.byId(s.substring(0, colon));
    String hex = colon < 0 ? null : s.substring(colon + 1);
    // A well-formed digest of a registered algorithm fits the grammar by construction; only what
    // is refused needs the grammar, to say why.
    if (algorithm != null && algorithm.accepts(hex)) {
      return new Digest(algorithm, hex);
    }
    if (s == null || s.length() > 256 || !GRAMMAR.matcher(s).matches()) {
      throw new IllegalArgumentException("invalid digest format");
    }
    if (algorithm == null) {
      throw new IllegalArgumentException("unsupported digest algorithm " + s.substring(0, colon));
    }
    throw new IllegalArgumentException(
        algorithm.id + " digests are " + algorithm.hexLength + " lowercase hex characters");
  }

  /** Parses a digest, or returns null when {@code s} is not one (for optional headers). */
  public static Digest parseOrNull(String s) {
    try {
      return parse(s);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  public static Digest of(Algorithm algorithm, byte[] content) {
    return finish(algorithm, algorithm.newMessageDigest().digest(content));
  }

  public static Digest sha256(byte[] content) {
    return of(Algorithm.SHA256, content);
  }

  /** The digest of a finished hash computation. */
  public static Digest finish(Algorithm algorithm, byte[] hash) {
    return new Digest(algorithm, HexFormat.of().formatHex(hash));
  }

  /** True when {@code content} hashes to this digest. */
  public boolean matches(byte[] content) {
    return equals(of(algorithm, content));
  }

  @Override
  public String toString() {
    return algorithm.id + ":" + hex;
  }
}
