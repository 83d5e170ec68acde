package io.registrymirror.api;

import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.GrowingBlob;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.Objects;

/**
 * Streams a blob that is still being fetched to one client, at the client's own pace: a chunk
 * is taken from the fill once it is there and less than {@link #WINDOW} bytes are on their way
 * to the socket, so a client holds at most that much memory whatever the blob size. (Vert.x's
 * {@code writeQueueFull} turns true only some time after a write; pacing by completed writes
 * does not depend on it.)
 *
 * <p>The last byte of the response waits until the whole blob is verified, so that no response,
 * whole blob or range, can complete with bytes that turn out not to match the digest. If the
 * fill fails, the connection is reset: the client sees a broken transfer.
 *
 * <p>Every chunk is read under {@link SendMemory}, all clients' together; a client that stops
 * reading is cut and gives its memory back.
 */
final class FillSender {

  private static final int CHUNK = 256 * 1024;

  /** Bytes written but not yet on the wire, at most: enough that the socket never waits for a read. */
  private static final int WINDOW = 2 * CHUNK;

  private final GrowingBlob fill;
  private final HttpServerResponse response;
  private final HttpServerRequest request;
  private final SendMemory.Client memory;
  private final long end;
  private long position;
  private boolean done;
  /** A look at the fill or a read is under way: only one at a time. */
  private boolean busy;
  private long inFlight;

  /** Sends {@code [start, end)} of the blob; {@code end} -1 means to its end, whatever that is. */
  FillSender(GrowingBlob fill, HttpServerRequest request, long start, long end, SendMemory memory) {
    this.fill = fill;
    this.request = request;
    this.response = request.response();
    this.memory = memory.open(address(request), this::cut);
    this.position = start;
    this.end = end;
  }

  private static String address(HttpServerRequest request) {
    SocketAddress client = request.remoteAddress();
    return client == null ? "" : Objects.requireNonNullElse(client.hostAddress(), client.host());
  }

  void start() {
    response.closeHandler(v -> finish());
    next();
  }

  private void next() {
    if (done || busy || inFlight >= WINDOW) {
      return;
    }
    boolean verified = fill.isVerified();
    if (end >= 0 && position >= end) {
      if (verified) {
        response.end();
        finish();
      } else {
        await();
      }
      return;
    }
    long limit = end < 0 || verified ? end : end - 1;
    if (limit >= 0 && position >= limit) {
      await();
      return;
    }
    busy = true;
    fill.available(position).onComplete(available -> {
      busy = false;
      if (done) {
        return;
      }
      if (available.failed()) {
        abort();
        return;
      }
      long n = available.result();
      if (n == 0) {
        // The end of the verified blob: complete unless it is shorter than was announced.
        if (end >= 0) {
          abort();
        } else {
          response.end();
          finish();
        }
        return;
      }
      int length = (int) Math.min(CHUNK, limit < 0 ? n : Math.min(n, limit - position));
      send(length);
    });
  }

  private void send(int length) {
    busy = true;
    memory.reserve(length).onComplete(reserved -> {
      if (reserved.failed()) {
        busy = false;
        if (!done) {
          abort();
        }
        return;
      }
      SendMemory.Lease lease = reserved.result();
      if (done) {
        busy = false;
        lease.release();
        return;
      }
      read(length, lease);
    });
  }

  private void read(int length, SendMemory.Lease lease) {
    fill.read(position, length).onComplete(read -> {
      busy = false;
      if (read.failed()) {
        lease.release();
        if (!done) {
          abort();
        }
        return;
      }
      ByteBuf chunk = read.result();
      if (done) {
        chunk.release();
        lease.release();
        return;
      }
      int n = chunk.readableBytes();
      position += n;
      inFlight += n;
      memory.sending();
      // Pooled memory goes back once on the wire: Vert.x does not take ownership of it.
      response.write(BufferInternal.buffer(chunk)).onComplete(written -> {
        memory.sent();
        chunk.release();
        inFlight -= n;
        if (written.succeeded()) {
          next();
        } else if (!done) {
          abort();
        }
        // After the next chunk has asked for memory: what this one gives back can go to it.
        lease.release();
      });
      next();
    });
  }

  private void await() {
    busy = true;
    fill.awaitChange().onComplete(r -> retry(r.succeeded()));
  }

  private void retry(boolean fillAlive) {
    busy = false;
    if (fillAlive) {
      next();
    } else if (!done) {
      abort();
    }
  }

  /**
   * Ends a client that has stalled (see {@link SendMemory}). Over HTTP/1.1 a reset closes the connection
   * only after what is queued for it is written, which a client that does not read never lets
   * happen: its socket is closed at once, and the chunks held for it are given back.
   */
  private void cut() {
    if (done) {
      return;
    }
    if (request.version() != HttpVersion.HTTP_2 && request.connection() instanceof ConnectionBase connection) {
      // Past Vert.x's own handler, whose close would wait for the flush, as its idle timeout does.
      connection.channelHandlerContext().close();
    }
    abort();
  }

  private void abort() {
    response.reset();
    finish();
  }

  private void finish() {
    if (!done) {
      done = true;
      memory.close();
      fill.release();
    }
  }
}
