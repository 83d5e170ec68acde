package io.registrymirror.tags;

import io.registrymirror.oci.Digest;
import java.util.List;

/** Fetches what a tag names now into the cache, ahead of the pulls that will ask for it. */
public interface TagWarmer {

  /**
   * Fetches {@code digest}'s manifest and, for an index, those of {@code platforms}
   * ({@code os/architecture[/variant]}), then their config and layer blobs.
   */
  void warm(TagKey key, Digest digest, List<String> platforms);
}
