package io.registrymirror.oci;

/** What identifies content: its media type, digest and size, as in an OCI descriptor. */
public record Descriptor(String mediaType, Digest digest, long size) {}
