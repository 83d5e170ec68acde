package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.vertx.core.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One reader of a fill, holding one of its references: the file stays open until every reader
 * and the writer are done. The reference is taken when the reader is made and given back by
 * {@link #release()}, once however often it is called. The reader's place only moves forward;
 * once the fill has lost its disk, the bytes behind every reader's place are let go.
 */
final class FillReader implements GrowingBlob {

  private final BlobFill fill;
  private final AtomicBoolean released = new AtomicBoolean();
  /** The furthest position asked for or read to; guarded by the fill's lock. */
  private long position;

  FillReader(BlobFill fill) {
    this.fill = fill;
  }

  @Override
  public long expectedSize() {
    return fill.expectedSize();
  }

  @Override
  public boolean isVerified() {
    return fill.isVerified();
  }

  @Override
  public Future<Long> available(long position) {
    return fill.available(this, position);
  }

  @Override
  public Future<Void> awaitChange() {
    return fill.awaitChange();
  }

  @Override
  public Future<ByteBuf> read(long position, int max) {
    return fill.read(this, position, max);
  }

  @Override
  public void release() {
    if (released.compareAndSet(false, true)) {
      fill.release(this);
    }
  }

  long position() {
    return position;
  }

  void moveTo(long position) {
    this.position = Math.max(this.position, position);
  }
}
