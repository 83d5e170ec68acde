package io.registrymirror.proxy;

import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Manifest;

/**
 * A manifest request's answer.
 *
 * @param descriptor type, digest and size, for the response headers
 * @param manifest the bytes; null only for a HEAD the mirror could answer without them
 * @param result how it was obtained, for metrics and the cache-status header
 */
public record ManifestAnswer(Descriptor descriptor, Manifest manifest, MirrorMetrics.Result result) {}
