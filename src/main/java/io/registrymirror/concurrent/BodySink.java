package io.registrymirror.concurrent;

import io.netty.buffer.ByteBuf;
import io.vertx.core.Future;

/**
 * Where a blob's body goes as it arrives from upstream, chunk by chunk, in Netty's own buffers:
 * a chunk may be pooled memory, so whoever takes one releases it once done with it. Confined to
 * one context; the producer pauses while the sink is {@link #full()}.
 */
public interface BodySink {

  /**
   * Takes {@code chunk} and the duty to release it, even when refusing it (the sink failed or
   * ended). A sink that is full still takes a few more: some may be on their way.
   */
  void write(ByteBuf chunk);

  /** Whether the producer should stop reading until {@link #onDrain} runs. */
  boolean full();

  /** Runs {@code drained}, once, on the sink's context, when it is no longer full. */
  void onDrain(Runnable drained);

  /** The body is complete: succeeds once the sink accepts it, fails if it rejects it. */
  Future<Void> end();
}
