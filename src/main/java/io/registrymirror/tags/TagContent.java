package io.registrymirror.tags;

import io.registrymirror.oci.Digest;

/**
 * Told what each tracked tag serves, so that the cache can keep that image's content: called on
 * every use and change of a tag (cheaply, from the request path), and when a tag stops being
 * tracked.
 */
public interface TagContent {

  /** The tag serves {@code digest}; {@code pinned} when a rule freezes it there. */
  void serves(TagKey key, Digest digest, boolean pinned);

  /** The tag is no longer tracked. */
  void forgotten(TagKey key);

  /** For a mirror whose cache is unbounded: nothing needs keeping. */
  TagContent NONE = new TagContent() {
    @Override
    public void serves(TagKey key, Digest digest, boolean pinned) {}

    @Override
    public void forgotten(TagKey key) {}
  };
}
