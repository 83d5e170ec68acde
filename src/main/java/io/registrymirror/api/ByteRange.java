package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;

/**
 * One satisfiable byte range of a blob, from a {@code Range: bytes=...} header (RFC 9110 §14).
 *
 * @param start first byte
 * @param end last byte, inclusive
 */
record ByteRange(long start, long end) {

  private static final String UNIT = "bytes=";

  long length() {
    return end - start + 1;
  }

  String contentRange(long size) {
    return "bytes " + start + "-" + end + "/" + size;
  }

  /**
   * Checks the header's syntax before the blob's size is known, so that a malformed range is
   * refused before anything is fetched.
   *
   * @throws RegistryException RANGE_INVALID for a malformed header
   */
  static void validate(String header) {
    if (specs(header) != null) {
      for (String spec : specs(header)) {
        bounds(spec.trim(), -1);
      }
    }
  }

  /**
   * Parses the header for a blob of {@code size} bytes. Null means "send the whole blob": no
   * header, a unit other than bytes (which HTTP says to ignore), or several ranges, which HTTP
   * lets a server answer with the full content.
   *
   * @throws RegistryException RANGE_INVALID for a malformed header or one that no byte satisfies
   */
  static ByteRange parse(String header, long size) {
    String[] specs = specs(header);
    if (specs == null) {
      return null;
    }
    if (specs.length > 1) {
      try {
        validate(header);
      } catch (RegistryException e) {
        throw e.withHeader("Content-Range", "bytes */" + size);
      }
      return null;
    }
    long[] b = bounds(specs[0].trim(), size);
    return new ByteRange(b[0], b[1]);
  }

  private static String[] specs(String header) {
    if (header == null) {
      return null;
    }
    String h = header.trim();
    if (h.length() < UNIT.length() || !h.regionMatches(true, 0, UNIT, 0, UNIT.length())) {
      return null;
    }
    return h.substring(UNIT.length()).split(",", -1);
  }

  /** {@code [start, end]} of one range spec; with {@code size} -1, checks the syntax only. */
  private static long[] bounds(String spec, long size) {
    int dash = spec.indexOf('-');
    if (dash < 0 || spec.indexOf('-', dash + 1) >= 0) {
      throw invalid("malformed range", size);
    }
    String a = spec.substring(0, dash).trim();
    String b = spec.substring(dash + 1).trim();
    if (a.isEmpty()) {
      long suffix = number(b, size);
      if (suffix == 0 || size == 0) {
        throw invalid("range not satisfiable", size);
      }
      return new long[] {Math.max(0, size - suffix), size - 1};
    }
    long start = number(a, size);
    long end = b.isEmpty() ? Long.MAX_VALUE : number(b, size);
    if (end < start) {
      throw invalid("range ends before it starts", size);
    }
    if (size >= 0 && start >= size) {
      throw invalid("range starts beyond the blob's " + size + " bytes", size);
    }
    return new long[] {start, Math.min(end, size - 1)};
  }

  private static long number(String s, long size) {
    if (s.isEmpty() || s.length() > 18) {
      throw invalid("malformed range", size);
    }
    for (int i = 0; i < s.length(); i++) {
      if (s.charAt(i) < '0' || s.charAt(i) > '9') {
        throw invalid("malformed range", size);
      }
    }
    return Long.parseLong(s);
  }

  private static RegistryException invalid(String why, long size) {
    RegistryException e = OciError.RANGE_INVALID.exception(why);
    return size < 0 ? e : e.withHeader("Content-Range", "bytes */" + size);
  }
}
