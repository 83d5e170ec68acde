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

  long length() {
    return end - start + 1;
  }

  String contentRange(long size) {
    return "bytes " + start + "-" + end + "/" + size;
  }

  /**
   * Parses the header for a blob of {@code size} bytes. Null means "send the whole blob": no
   * header, or several ranges, which HTTP lets a server answer with the full content.
   *
   * @throws RegistryException RANGE_INVALID for a malformed header or one that no byte satisfies
   */
  static ByteRange parse(String header, long size) {
    if (header == null) {
      return null;
    }
    String h = header.trim();
    if (h.length() < 6 || !h.regionMatches(true, 0, "bytes=", 0, 6)) {
      throw invalid("only byte ranges are supported", size);
    }
    String[] specs = h.substring(6).split(",", -1);
    ByteRange first = null;
    for (String spec : specs) {
      ByteRange r = single(spec.trim(), size);
      if (first == null) {
        first = r;
      }
    }
    return specs.length == 1 ? first : null;
  }

  private static ByteRange single(String spec, long size) {
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
      return new ByteRange(Math.max(0, size - suffix), size - 1);
    }
    long start = number(a, size);
    long end = b.isEmpty() ? Long.MAX_VALUE : number(b, size);
    if (end < start) {
      throw invalid("range ends before it starts", size);
    }
    if (start >= size) {
      throw invalid("range starts beyond the blob's " + size + " bytes", size);
    }
    return new ByteRange(start, Math.min(end, size - 1));
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
    return OciError.RANGE_INVALID.exception(why).withHeader("Content-Range", "bytes */" + size);
  }
}
