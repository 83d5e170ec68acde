package io.registrymirror.proxy;

import io.registrymirror.concurrent.GrowingBlob;
import io.registrymirror.upstream.BlobDownload;

/**
 * Where a blob's bytes come from: a complete file in the cache, a fill still arriving, or, when
 * the cache cannot take it, upstream's body itself.
 */
public sealed interface BlobSource {

  /**
   * A verified file, served zero-copy; the holder must {@code release} it when done, so that an
   * eviction meanwhile deletes it only afterwards.
   */
  record Cached(String file, long size, Runnable release) implements BlobSource {}

  /** A blob being fetched, read as it grows; the holder must release it when done. */
  record Filling(GrowingBlob blob) implements BlobSource {}

  /**
   * Upstream's body for a blob the cache cannot store (a full or read-only disk), for one client
   * alone and unverified: the holder must verify it on the way, and pipe it to its end or
   * cancel it.
   */
  record Uncached(BlobDownload download) implements BlobSource {}
}
