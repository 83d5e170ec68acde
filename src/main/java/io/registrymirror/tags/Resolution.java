package io.registrymirror.tags;

import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;

/**
 * A tag's answer.
 *
 * @param descriptor the manifest the tag names upstream
 * @param source whether upstream was asked, and whether it failed so the last known answer served
 * @param pinned the digest to serve instead, for a frozen tag; else null
 */
public record Resolution(Descriptor descriptor, Source source, Digest pinned) {

  /** How the answer was obtained. */
  public enum Source { CACHE, UPSTREAM, STALE }
}
