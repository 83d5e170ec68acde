package io.registrymirror.store;

/**
 * How far a scrub of the cache has got: the files and bytes it found to check when it started,
 * those checked so far, and what it removed or could not check. The last one is its summary.
 *
 * @param filesTotal files under {@code blobs/}, {@code manifests/} and {@code manifest-types/}
 *     when the scrub started
 * @param bytesTotal their bytes
 * @param files files checked so far (read and hashed, or found to be no digest's file)
 * @param bytes bytes checked so far, counting the file being hashed as far as it has been read
 * @param removed files removed: content that does not match its digest, a manifest's media type
 *     with it, and files that are no digest's path
 * @param removedBytes their bytes
 * @param failed files that could not be read or removed (other than ones that went away)
 * @param nanos time since the scrub started
 */
public record ScrubProgress(long filesTotal, long bytesTotal, long files, long bytes, long removed,
    long removedBytes, long failed, long nanos) {

  /** Tenths of the bytes done, 0 to 10: a file that grew or appeared meanwhile may not pass 10. */
  public int tenths() {
    return bytesTotal <= 0 ? 10 : (int) Math.min(10, bytes * 10 / bytesTotal);
  }

  /** Bytes hashed per second so far. */
  public long bytesPerSecond() {
    return nanos <= 0 ? 0 : (long) (bytes / (nanos / 1e9));
  }

  public long millis() {
    return nanos / 1_000_000;
  }
}
