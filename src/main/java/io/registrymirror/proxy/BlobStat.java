package io.registrymirror.proxy;

/**
 * What a HEAD of a blob says: its size (-1 when upstream did not say) and whether the cache
 * answered, found in one lookup.
 */
public record BlobStat(long size, boolean cached) {}
