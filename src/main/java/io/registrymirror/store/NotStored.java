package io.registrymirror.store;

/**
 * Why a fill ended without its blob in the cache although its readers got it whole: the cache
 * could not write it (a full or read-only disk). The cause is the write's failure.
 */
public final class NotStored extends RuntimeException {

  NotStored(Throwable cause) {
    super("the cache could not store the blob: " + cause, cause, false, false);
  }
}
