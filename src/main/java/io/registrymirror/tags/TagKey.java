package io.registrymirror.tags;

import io.registrymirror.oci.RepositoryName;

/** A tag in one repository of one upstream. */
public record TagKey(String upstream, RepositoryName name, String tag) {

  public TagKey {
    // A few upstream names, one per key: one copy of each.
    upstream = upstream.intern();
  }

  @Override
  public String toString() {
    return upstream + "/" + name + ":" + tag;
  }
}
