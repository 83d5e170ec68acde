package io.registrymirror.upstream;

import io.registrymirror.oci.RepositoryName;

/** Where a request goes: an upstream, and the repository's name as that upstream knows it. */
public record Target(UpstreamClient upstream, RepositoryName name) {

  @Override
  public String toString() {
    return upstream.name() + "/" + name;
  }
}
