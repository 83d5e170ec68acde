package io.registrymirror.tags;

import io.registrymirror.oci.RepositoryName;

/** A tag in one repository of one upstream. */
public record TagKey(String upstream, RepositoryName name, String tag) {

  @Override
  public String toString() {
    return upstream + "/" + name + ":" + tag;
  }
}
