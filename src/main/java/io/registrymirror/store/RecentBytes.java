package io.registrymirror.store;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The bytes a fill received last, in upstream's own buffers: all those not yet in the file, and
 * some behind them, for readers that keep up (once the disk has failed: all that a reader still
 * needs). It holds one reference to each buffer, given back when the bytes are let go. Not
 * thread-safe: its fill guards it with its own lock. The buffers' bytes never change once added,
 * so views of them may go to any thread.
 */
final class RecentBytes {

  /** Bytes of the blob at {@code offset}. */
  private record Segment(long offset, ByteBuf data) {
    long end() {
      return offset + data.readableBytes();
    }
  }

  private final ArrayDeque<Segment> segments = new ArrayDeque<>();
  private long bytes;

  /** Takes {@code data}, and the reference to it, as the bytes at {@code offset}. */
  void add(long offset, ByteBuf data) {
    segments.addLast(new Segment(offset, data));
    bytes += data.readableBytes();
  }

  /** How many bytes are held. */
  long bytes() {
    return bytes;
  }

  /** Whether the bytes from {@code position} on are all here. */
  boolean covers(long position) {
    return !segments.isEmpty() && position >= segments.peekFirst().offset();
  }

  /**
   * A view of {@code n} bytes at {@code position}, which {@link #covers} them, without a copy,
   * holding a reference of its own: the caller releases it.
   */
  ByteBuf slice(long position, int n) {
    List<ByteBuf> parts = new ArrayList<>();
    int got = 0;
    for (Segment segment : segments) {
      if (got == n) {
        break;
      }
      if (segment.end() <= position + got) {
        continue;
      }
      int from = (int) (position + got - segment.offset());
      ByteBuf data = segment.data();
      int length = Math.min(n - got, data.readableBytes() - from);
      parts.add(data.retainedSlice(data.readerIndex() + from, length));
      got += length;
    }
    return parts.size() == 1 ? parts.get(0) : Unpooled.wrappedBuffer(parts.toArray(ByteBuf[]::new));
  }

  /**
   * Lets go of the oldest bytes, those before {@code limit} (no reader needs them from here),
   * keeping those that end within {@code keep} bytes of {@code end}; returns how many were let go.
   */
  long dropBefore(long limit, long end, long keep) {
    long freed = 0;
    while (!segments.isEmpty() && segments.peekFirst().end() <= limit
        && end - segments.peekFirst().end() >= keep) {
      ByteBuf data = segments.removeFirst().data();
      freed += data.readableBytes();
      data.release();
    }
    bytes -= freed;
    return freed;
  }

  /** Lets go of everything; returns how many bytes that was. */
  long clear() {
    long freed = bytes;
    segments.forEach(segment -> segment.data().release());
    segments.clear();
    bytes = 0;
    return freed;
  }
}
