package io.registrymirror.proxy;

import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Manifest;
import java.nio.file.Path;

/**
 * A manifest request's answer.
 *
 * @param descriptor type, digest and size, for the response headers
 * @param manifest the bytes when they are in memory, else null
 * @param file where the bytes are on disk, to send when they are not in memory; not
 *     necessarily there for a HEAD the mirror could answer without them
 * @param result how it was obtained, for metrics and the cache-status header
 */
public record ManifestAnswer(Descriptor descriptor, Manifest manifest, Path file, MirrorMetrics.Result result) {}
