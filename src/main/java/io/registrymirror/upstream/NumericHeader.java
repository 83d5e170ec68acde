package io.registrymirror.upstream;

import java.util.OptionalLong;

/**
 * The one parser of numeric header values from upstream ({@code Content-Length},
 * {@code Retry-After}, the count in {@code ratelimit-remaining}): spaces around the number are
 * allowed, anything else makes it no number.
 */
public final class NumericHeader {

  private NumericHeader() {}

  /** The number, or empty when the header is absent or not a number. */
  public static OptionalLong parse(String value) {
    if (value == null) {
      return OptionalLong.empty();
    }
    try {
      return OptionalLong.of(Long.parseLong(value.trim()));
    } catch (NumberFormatException e) {
      return OptionalLong.empty();
    }
  }
}
