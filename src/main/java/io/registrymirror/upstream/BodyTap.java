package io.registrymirror.upstream;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;
import io.registrymirror.concurrent.BodySink;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.ArrayDeque;

/*
 * Vert.x hands a response body to its handlers as heap copies of Netty's buffers, made on the
 * event loop, one per chunk: for a blob that is a copy of every byte, and as much garbage. A blob
 * is hashed, written to disk and sent to clients, all of which take Netty's buffers as they are,
 * so the blob path reads the body below Vert.x: this handler sits on the connection's pipeline
 * just before Vert.x's own, for one response. Vert.x still sees the response's head, an empty
 * chunk per read (which keeps its idle timeout going) and its end, so it times the request out,
 * resets it and pools the connection as for any other.
 */
/**
 * The body of one blob response, taken off the connection as Netty's buffers (pooled, and direct
 * unless TLS decrypted them) and handed to a {@link BodySink} with backpressure: while the sink
 * is full, the connection stops reading. Installed before the request is sent, so that no byte
 * of the response can pass it; only a 200 or 206 response's body is taken, anything else goes to
 * Vert.x as usual. Until {@link #pipeTo} names the sink, what arrives is held and reading stops.
 */
final class BodyTap extends ChannelInboundHandlerAdapter {

  private final Channel channel;

  // The channel's event loop only.
  private boolean taking;
  private boolean readSinceComplete;

  // Shared between the event loop and the sink's context: guarded by this.
  private final ArrayDeque<ByteBuf> chunks = new ArrayDeque<>();
  private boolean ended;
  private Throwable failure;
  /** Nobody will read what comes: it is released at once. */
  private boolean discarded;
  private Context sinkContext;
  private BodySink sink;
  private Promise<Void> done;
  private boolean scheduled;

  private BodyTap(Channel channel) {
    this.channel = channel;
  }

  /** Puts a tap on the connection of {@code request}, which is about to be sent. */
  static BodyTap install(HttpClientRequest request) {
    if (!(request.connection() instanceof ConnectionBase connection)) {
      throw new IllegalStateException("no Netty channel under " + request.connection());
    }
    ChannelHandlerContext vertxHandler = connection.channelHandlerContext();
    BodyTap tap = new BodyTap(connection.channel());
    vertxHandler.pipeline().addBefore(vertxHandler.name(), null, tap);
    return tap;
  }

  /**
   * Hands the body, from what is held on, to {@code sink} on the caller's context, and ends the
   * sink when the body is complete. Completes with the sink's end; fails if the body breaks off
   * (the sink is then not ended).
   */
  Future<Void> pipeTo(BodySink sink) {
    Promise<Void> promise = Promise.promise();
    Context context = Vertx.currentContext();
    if (context == null) {
      throw new IllegalStateException("a body is piped from a Vert.x context");
    }
    synchronized (this) {
      this.sinkContext = context;
      this.sink = sink;
      this.done = promise;
    }
    reading(true);
    schedule();
    return promise.future();
  }

  /** Releases what is held and whatever still comes: nobody will read the body. */
  void discard() {
    synchronized (this) {
      discarded = true;
      done = null;
    }
    releaseHeld();
  }

  // ---- the event loop ----

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof HttpResponse head && !(msg instanceof HttpContent)) {
      int status = head.status().code();
      taking = head.decoderResult().isSuccess() && (status == 200 || status == 206);
      if (taking) {
        channel.config().setAutoRead(false); // until a sink is named
      }
      ctx.fireChannelRead(msg);
      return;
    }
    if (!(msg instanceof HttpContent content)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (!taking) {
      if (msg instanceof LastHttpContent) {
        detach(ctx); // a redirect, a challenge or an error: Vert.x reads it
      }
      ctx.fireChannelRead(msg);
      return;
    }
    if (content.decoderResult().isFailure()) {
      failed(content.decoderResult().cause());
      content.release();
      detach(ctx);
      ctx.close();
      return;
    }
    take(content.content());
    if (msg instanceof LastHttpContent last) {
      synchronized (this) {
        ended = true;
      }
      schedule();
      detach(ctx);
      readSinceComplete = false;
      ctx.fireChannelRead(last.trailingHeaders().isEmpty() ? LastHttpContent.EMPTY_LAST_CONTENT
          : new DefaultLastHttpContent(Unpooled.EMPTY_BUFFER, last.trailingHeaders()));
      return;
    }
    readSinceComplete = true;
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    if (readSinceComplete) {
      readSinceComplete = false;
      schedule();
      ctx.fireChannelRead(new DefaultHttpContent(Unpooled.EMPTY_BUFFER)); // Vert.x's idle timer
    }
    ctx.fireChannelReadComplete();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    failed(new VertxException("upstream closed the connection before the end of the body", true));
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    failed(cause);
    ctx.fireExceptionCaught(cause);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    failed(new VertxException("the connection was torn down before the end of the body", true));
  }

  private void take(ByteBuf chunk) {
    if (!chunk.isReadable()) {
      chunk.release();
      return;
    }
    boolean release;
    synchronized (this) {
      release = discarded || failure != null;
      if (!release) {
        chunks.add(chunk);
      }
    }
    if (release) {
      chunk.release();
    }
  }

  private void detach(ChannelHandlerContext ctx) {
    taking = false;
    channel.config().setAutoRead(true); // the connection goes back to Vert.x as it found it
    if (!ctx.isRemoved()) {
      ctx.pipeline().remove(this);
    }
  }

  /** The body broke off; nothing once it is complete. */
  private void failed(Throwable cause) {
    synchronized (this) {
      if (ended || failure != null) {
        return;
      }
      failure = cause;
    }
    schedule();
  }

  // ---- the sink's context ----

  private void schedule() {
    Context context;
    synchronized (this) {
      if (scheduled || sinkContext == null) {
        if (discarded || failure != null && sinkContext == null) {
          releaseHeld(); // nobody will read it
        }
        return;
      }
      scheduled = true;
      context = sinkContext;
    }
    context.runOnContext(v -> drain());
  }

  /** Hands the sink what is held while it has room, then ends it or fails; or waits for room. */
  private void drain() {
    BodySink to;
    synchronized (this) {
      scheduled = false;
      to = sink;
    }
    while (true) {
      if (to.full()) {
        // Asked again at every drain: reading stops after the read under way, whose chunks
        // wait here.
        reading(false);
        to.onDrain(() -> {
          reading(true);
          drain();
        });
        return;
      }
      ByteBuf chunk;
      synchronized (this) {
        chunk = discarded ? null : chunks.poll();
      }
      if (chunk == null) {
        break;
      }
      to.write(chunk);
    }
    Promise<Void> finished;
    Throwable cause;
    synchronized (this) {
      finished = done;
      cause = failure;
      if (finished == null || !(ended || cause != null) || !chunks.isEmpty()) {
        return;
      }
      done = null;
    }
    if (cause != null) {
      finished.tryFail(cause);
    } else {
      to.end().onComplete(finished);
    }
  }

  /**
   * Starts or stops reading the connection, on its event loop and only while the body is being
   * taken: once it is complete, the connection may already carry another request.
   */
  private void reading(boolean on) {
    channel.eventLoop().execute(() -> {
      if (taking) {
        channel.config().setAutoRead(on);
      }
    });
  }

  private void releaseHeld() {
    while (true) {
      ByteBuf chunk;
      synchronized (this) {
        chunk = chunks.poll();
      }
      if (chunk == null) {
        return;
      }
      chunk.release();
    }
  }
}
