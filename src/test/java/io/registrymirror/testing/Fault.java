package io.registrymirror.testing;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/** A misbehaviour for a {@link Forwarder} to inject into the response of a matching request. */
public sealed interface Fault {

  /**
   * Sends the headers (with the real Content-Length) and the first {@code bytes} of the body, then closes the
   * connection. The close is orderly rather than a TCP reset, which could discard bytes already sent, so the
   * client deterministically receives exactly {@code bytes} before it sees the truncation.
   */
  static Fault cutAfter(long bytes) {
    return new CutAfter(bytes);
  }

  /** Forwards the whole response but with the byte at {@code offset} of the body inverted (XOR 0xFF). */
  static Fault flipByte(long offset) {
    return new FlipByte(offset);
  }

  /** Answers with this status, body and headers without contacting the upstream. */
  static Fault status(int status, String body, Map<String, String> headers) {
    return new Status(status, body, headers);
  }

  /**
   * Forwards the headers and the first {@code bytes} of the body, then holds the rest back until
   * {@code release} completes: a transfer caught in the middle, for as long as a test needs.
   */
  static Fault holdAfter(long bytes, CompletableFuture<Void> release) {
    return new HoldAfter(bytes, release);
  }

  /** Waits before forwarding the request, so the response headers arrive late. */
  static Fault delayHeaders(Duration delay) {
    return new DelayHeaders(delay);
  }

  /**
   * Forwards the request, then holds upstream's answer back until {@code release} completes:
   * answers to several requests, let go at one instant, reach the client together.
   */
  static Fault holdHeaders(CompletableFuture<Void> release) {
    return new HoldHeaders(release);
  }

  /**
   * Takes the request and never answers it: response headers that never come. Such a request
   * counts in {@link Forwarder#arrived} but, with no response, never in {@link Forwarder#seen}.
   */
  static Fault headersNever() {
    return new HeadersNever();
  }

  /**
   * Forwards the whole response with its real Content-Length, then sends {@code extra} more
   * bytes on the same connection and closes it: a body longer than its Content-Length.
   */
  static Fault longBody(int extra) {
    return new LongBody(extra);
  }

  /**
   * Announces a Content-Length {@code delta} bytes off the real one, forwards the real body as it
   * is, then closes the connection. With a positive delta the body is shorter than announced;
   * with a negative one it runs on past the announced end.
   */
  static Fault wrongLength(long delta) {
    return new WrongLength(delta);
  }

  /**
   * Forwards the body at about {@code bytesPerSecond}, a little every 100 ms, reading no faster
   * from the upstream: a transfer too slow to be of use that still never goes idle.
   */
  static Fault drip(int bytesPerSecond) {
    return new Drip(bytesPerSecond);
  }

  /**
   * Forwards the response with these headers set to these values, and {@code body} (a fault
   * on the body, or null for none) applied to its body: e.g. an ETag that will no longer match.
   */
  static Fault withHeaders(Map<String, String> headers, Fault body) {
    return new WithHeaders(headers, body);
  }

  /**
   * Forwards the response without these headers, and {@code body} (a fault on the body, or
   * null for none) applied to its body: e.g. an upstream that sends no validators.
   */
  static Fault withoutHeaders(List<String> names, Fault body) {
    return new WithoutHeaders(names, body);
  }

  /**
   * Forwards the response chunked, without its Content-Length, with {@code body} (a fault on the
   * body, or null for none) applied to its body: an upstream that does not say how much is coming.
   */
  static Fault withoutLength(Fault body) {
    return new WithoutLength(body);
  }

  record CutAfter(long bytes) implements Fault {
  }

  record FlipByte(long offset) implements Fault {
  }

  record Status(int status, String body, Map<String, String> headers) implements Fault {
  }

  record DelayHeaders(Duration delay) implements Fault {
  }

  record HoldAfter(long bytes, CompletableFuture<Void> release) implements Fault {
  }

  record HeadersNever() implements Fault {
  }

  record HoldHeaders(CompletableFuture<Void> release) implements Fault {
  }

  record LongBody(int extra) implements Fault {
  }

  record WrongLength(long delta) implements Fault {
  }

  record Drip(int bytesPerSecond) implements Fault {
  }

  record WithHeaders(Map<String, String> headers, Fault body) implements Fault {
  }

  record WithoutHeaders(List<String> names, Fault body) implements Fault {
  }

  record WithoutLength(Fault body) implements Fault {
  }
}
