package io.registrymirror.tags;

import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Reference;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;

/**
 * Where a tag's manifest comes from when upstream names it only in the body: the one path that
 * fetches and stores manifests, so that tags keep records and never touch the manifest store.
 */
@FunctionalInterface
public interface ManifestSource {

  /** GETs the manifest from upstream, verified, into the store; answers what it is. */
  Future<Descriptor> fetch(Target target, Reference ref, String accept);
}
