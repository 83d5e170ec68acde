package io.registrymirror.tags;

import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;

/**
 * A tag's answer.
 *
 * @param descriptor the manifest the tag names upstream
 * @param result how it was obtained: {@code HIT} from the record within its TTL, {@code MISS} when
 *     upstream was asked, {@code STALE} when upstream failed and the last known answer served
 * @param pinned the digest to serve instead, for a frozen tag; else null
 */
public record Resolution(Descriptor descriptor, Result result, Digest pinned) {}
