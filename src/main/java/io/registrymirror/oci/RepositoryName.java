package io.registrymirror.oci;

import java.util.regex.Pattern;

/** A repository name such as {@code library/alpine}, checked against the distribution spec's grammar. */
public record RepositoryName(String value) {

  /** Clients cap {@code host[:port]/name} at 255 characters; distribution rejects longer names. */
  public static final int MAX_LENGTH = 255;

  private static final Pattern GRAMMAR = Pattern.compile(
      "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*");

  public RepositoryName {
    if (!valid(value)) {
      throw new IllegalArgumentException("invalid repository name");
    }
  }

  public static boolean valid(String value) {
    return value != null && !value.isEmpty() && value.length() <= MAX_LENGTH
        && GRAMMAR.matcher(value).matches();
  }

  /** The first path component, which may name a registry (e.g. {@code ghcr.io}). */
  public String firstComponent() {
    int slash = value.indexOf('/');
    return slash < 0 ? value : value.substring(0, slash);
  }

  @Override
  public String toString() {
    return value;
  }
}
