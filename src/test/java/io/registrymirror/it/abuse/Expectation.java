package io.registrymirror.it.abuse;

import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What one case expects of its answer beyond the invariants; null when it holds. */
interface Expectation {
  String violation(Case c, Reply r);

  /** Only a request whose framing is broken may be answered by closing the connection. */
  default boolean allowsNoAnswer() {
    return false;
  }

  /** A refusal: a 4xx and, when it is the OCI JSON, one of these codes (any known one if none given). */
  static Expectation refused(String... codes) {
    return (c, r) -> {
      if (r.status() < 400) {
        return "accepted with " + r.status() + ", expected a refusal";
      }
      String code = r.code();
      if (codes.length > 0 && code != null && !Arrays.asList(codes).contains(code)) {
        return "refused with " + code + ", expected one of " + Arrays.toString(codes);
      }
      return null;
    };
  }

  /** A refusal, or a dropped connection, for a request whose body cannot be framed. */
  static Expectation refusedOrDropped() {
    Expectation refused = refused();
    return new Expectation() {
      @Override
      public String violation(Case c, Reply r) {
        return refused.violation(c, r);
      }

      @Override
      public boolean allowsNoAnswer() {
        return true;
      }
    };
  }

  /** No answer at all: the connection is closed at once. */
  static Expectation dropped() {
    return new Expectation() {
      @Override
      public String violation(Case c, Reply r) {
        return "answered " + r.status() + ", expected the connection to be closed without an answer";
      }

      @Override
      public boolean allowsNoAnswer() {
        return true;
      }
    };
  }

  /** Not found upstream: a 404 with one of these codes. */
  static Expectation unknown(String... codes) {
    return (c, r) -> r.status() == 404 && (r.code() == null || Arrays.asList(codes).contains(r.code()))
        ? null : "expected 404 " + Arrays.toString(codes);
  }

  /** Only the invariants. */
  static Expectation anyAnswer() {
    return (c, r) -> null;
  }

  /**
   * Existing content: a 200 or 206 must carry exactly its bytes (the range named by
   * Content-Range), a 416 must be RANGE_INVALID; anything else must still be a clean answer.
   */
  static Expectation content(byte[] bytes) {
    return (c, r) -> {
      boolean head = c.method().equals("HEAD");
      if (r.status() == 200) {
        if (head) {
          return r.contentLength() == bytes.length ? null : "HEAD Content-Length " + r.contentLength();
        }
        return Arrays.equals(r.body(), bytes) ? null : "200 with other bytes than the content";
      }
      if (r.status() == 206) {
        Matcher m = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+)").matcher(String.valueOf(r.header("content-range")));
        if (!m.matches() || Long.parseLong(m.group(3)) != bytes.length) {
          return "206 with Content-Range " + r.header("content-range");
        }
        int from = Integer.parseInt(m.group(1));
        int to = Integer.parseInt(m.group(2));
        if (head) {
          return null;
        }
        return to < bytes.length && Arrays.equals(r.body(), Arrays.copyOfRange(bytes, from, to + 1))
            ? null : "206 with other bytes than the range";
      }
      if (r.status() == 416) {
        return r.code() == null && head || "RANGE_INVALID".equals(r.code()) ? null : "416 without RANGE_INVALID";
      }
      return r.status() == 304 || r.status() >= 400 ? null : "unexpected status " + r.status();
    };
  }
}
