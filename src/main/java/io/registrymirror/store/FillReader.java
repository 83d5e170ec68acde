package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.vertx.core.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One reader of a fill, holding one of its references: the file stays open until every reader
 * and the writer are done. The reference is taken when the reader is made and given back by
 * {@link #release()}, once however often it is called.
 */
final class FillReader implements GrowingBlob {

  private final BlobFill fill;
  private final AtomicBoolean released = new AtomicBoolean();

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
    return fill.available(position);
  }

  @Override
  public Future<Void> awaitChange() {
    return fill.awaitChange();
  }

  @Override
  public Future<ByteBuf> read(long position, int max) {
    return fill.read(position, max);
  }

  @Override
  public void release() {
    if (released.compareAndSet(false, true)) {
      fill.release();
    }
  }
}
