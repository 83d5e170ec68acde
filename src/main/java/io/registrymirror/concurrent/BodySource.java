package io.registrymirror.concurrent;

import io.vertx.core.Future;
import java.util.function.LongSupplier;

/**
 * A blob's body from wherever it comes (an upstream, the replica that owns it, object storage),
 * ready to be piped into a {@link BodySink} once.
 */
public interface BodySource {

  /** The length announced, or -1 when none was. */
  long expectedSize();

  /**
   * Pipes the body into {@code sink} on the caller's context; {@code received} tells how many
   * bytes the sink has taken, where a source that can resume a break starts again. Completes
   * when the sink's end does; fails with the break, and the sink is then not ended.
   */
  Future<Void> pipeTo(BodySink sink, LongSupplier received);

  /** Stops the body for good, piped or not. */
  void cancel();
}
