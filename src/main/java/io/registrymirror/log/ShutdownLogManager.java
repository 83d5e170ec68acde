package io.registrymirror.log;

import java.util.logging.Handler;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/**
 * A log manager that keeps logging through JVM shutdown. The JDK's own resets every handler
 * from a shutdown hook of its own, racing the mirror's: what the mirror says while it stops
 * would be lost. This one ignores that reset and flushes when told to.
 */
public final class ShutdownLogManager extends LogManager {

  @Override
  public void reset() {
    // Deferred: the mirror's shutdown hook still has things to say.
  }

  /** Flushes every handler of the root logger; the last thing the mirror does before exit. */
  public static void flush() {
    for (Handler h : Logger.getLogger("").getHandlers()) {
      h.flush();
    }
  }
}
