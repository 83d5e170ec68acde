package io.registrymirror.store;

/**
 * Why a fill failed when the body it was given is not the blob: too short, too long, or hashing
 * to another digest. The cause of the fill's error, for a caller that must tell a bad source
 * (whose copy should go) from a failure of the transfer or the disk.
 */
public final class WrongContent extends RuntimeException {

  WrongContent(String message) {
    super(message, null, false, false);
  }

  /** Whether {@code failure} is, or was caused by, wrong content. */
  public static boolean in(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof WrongContent) {
        return true;
      }
    }
    return false;
  }
}
