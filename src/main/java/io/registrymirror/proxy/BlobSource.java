package io.registrymirror.proxy;

import io.registrymirror.store.BlobFill;

/** Where a blob's bytes come from: a complete file in the cache, or a fill still arriving. */
public sealed interface BlobSource {

  /** A verified file, served zero-copy. */
  record Cached(String file, long size) implements BlobSource {}

  /** A blob being fetched; the holder owns one reference and must release it when done. */
  record Filling(BlobFill fill) implements BlobSource {}
}
