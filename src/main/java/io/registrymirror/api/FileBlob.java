package io.registrymirror.api;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.WorkerExecutor;
import java.nio.channels.FileChannel;

/**
 * A cached file, verified long ago, read in chunks on a worker: for a connection that cannot take
 * {@code sendFile}'s zero-copy path. Over TLS the bytes must pass through user space to be
 * encrypted, and Vert.x would read them on the event loop, where a slow disk would stall every
 * other client. {@link FillSender} sends it as it sends a blob being fetched, at the client's
 * pace. Releasing it closes the file, on the worker, and completes {@link #released()}.
 */
final class FileBlob implements GrowingBlob {

  private final WorkerExecutor files;
  private final FileChannel channel;
  private final long size;
  private final Promise<Void> released = Promise.promise();

  /** @param size where the bytes the client is sent end: the length announced for the file */
  FileBlob(WorkerExecutor files, FileChannel channel, long size) {
    this.files = files;
    this.channel = channel;
    this.size = size;
  }

  /** Completes once the sender is done with the file and it is closed. */
  Future<Void> released() {
    return released.future();
  }

  @Override
  public long expectedSize() {
    return size;
  }

  @Override
  public boolean isVerified() {
    return true;
  }

  @Override
  public Future<Long> available(long position) {
    return Future.succeededFuture(Math.max(0, size - position));
  }

  @Override
  public Future<Void> awaitChange() {
    return Future.succeededFuture();
  }

  @Override
  public Future<ByteBuf> read(long position, int max) {
    return files.executeBlocking(() -> GrowingBlob.read(channel, position, max), false);
  }

  @Override
  public void release() {
    if (released.future().isComplete()) {
      return;
    }
    files.executeBlocking(() -> {
      channel.close();
      return null;
    }, false).<Void>mapEmpty().onComplete(released);
  }
}
