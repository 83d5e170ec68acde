package io.registrymirror.oci;

/**
 * The read endpoints of the distribution API: what a request is routed to, and what the
 * request metrics count it under.
 */
public enum Endpoint {
  MANIFEST, BLOB, TAGS, REFERRERS;

  /** As it appears in metric labels. */
  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
