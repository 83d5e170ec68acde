package io.registrymirror.store;

import java.util.ArrayList;
import java.util.List;

/**
 * Who holds a fill, and so keeps its file open: the writer until the fill is over, and each
 * reader, at its place in the blob, until it lets go. Not thread-safe: the fill guards it with
 * its own lock.
 */
final class FillHolds {

  private final List<FillReader> readers = new ArrayList<>();
  private boolean writer = true;
  private boolean closed;

  /** Whether someone still holds the fill, so that a reader may join. */
  boolean inUse() {
    return writer || !readers.isEmpty();
  }

  void add(FillReader reader) {
    readers.add(reader);
  }

  void remove(FillReader reader) {
    readers.remove(reader);
  }

  void writerDone() {
    writer = false;
  }

  boolean hasReaders() {
    return !readers.isEmpty();
  }

  /** The place of the slowest reader, or {@code limit} if every reader is past it. */
  long slowest(long limit) {
    long slowest = limit;
    for (FillReader reader : readers) {
      slowest = Math.min(slowest, reader.position());
    }
    return slowest;
  }

  /** True once, when the last holder has let go: the file is to be closed. */
  boolean closeNow() {
    if (closed || inUse()) {
      return false;
    }
    closed = true;
    return true;
  }
}
