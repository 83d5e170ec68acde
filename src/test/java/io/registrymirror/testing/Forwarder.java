package io.registrymirror.testing;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.streams.WriteStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiPredicate;

/**
 * An HTTP/1.1 forwarder placed in front of an upstream (usually a {@link ReferenceRegistry}): it records every
 * exchange so tests can count upstream traffic, and injects faults into chosen responses.
 *
 * <p>Bodies are streamed with backpressure in both directions and faults are applied on the fly, so bodies of
 * hundreds of MiB pass through without being held in memory. It runs on its own {@link Vertx} instance, apart from
 * the code under test.
 */
public final class Forwarder implements AutoCloseable {

  private static final String LOOPBACK = "127.0.0.1";

  /** Hop-by-hop headers (RFC 9110 section 7.6.1) plus Host and Expect, which belong to each connection. */
  private static final Set<String> NOT_FORWARDED = Set.of("connection", "keep-alive", "proxy-connection",
      "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host",
      "expect");

  private final Vertx vertx = Vertx.vertx();
  private final HttpClient client;
  private final HttpServer server;
  private final Queue<Seen> seen = new ConcurrentLinkedQueue<>();
  private final Queue<Seen> arrivals = new ConcurrentLinkedQueue<>();
  private final List<Rule> rules = new CopyOnWriteArrayList<>();

  /** One forwarded (or faulted) exchange: the request as received and the status answered. */
  public record Seen(String method, String uri, MultiMap headers, int status) {
  }

  private record Rule(BiPredicate<String, String> when, Fault fault, AtomicInteger remaining) {
  }

  private Forwarder(int targetPort) {
    client = vertx.createHttpClient(
        new HttpClientOptions().setDefaultHost(LOOPBACK).setDefaultPort(targetPort),
        new PoolOptions().setHttp1MaxSize(64));
    server = vertx.createHttpServer(new HttpServerOptions()
            .setHost(LOOPBACK)
            .setPort(0)
            .setHandle100ContinueAutomatically(true))
        .requestHandler(this::handle);
  }

  /** Starts forwarding to {@code http://127.0.0.1:<targetPort>} from a free loopback port; returns once listening. */
  public static Forwarder start(int targetPort) {
    Forwarder forwarder = new Forwarder(targetPort);
    forwarder.server.listen().await();
    return forwarder;
  }

  public int port() {
    return server.actualPort();
  }

  public String url() {
    return "http://" + LOOPBACK + ":" + port();
  }

  /** Every exchange so far, in the order the responses started. */
  public List<Seen> seen() {
    return List.copyOf(seen);
  }

  /** How many exchanges had this method and a URI (path and query) matching {@code uriRegex}. */
  public long count(String method, String uriRegex) {
    return seen.stream().filter(s -> s.method().equals(method) && s.uri().matches(uriRegex)).count();
  }

  /**
   * How many requests with this method and URI have arrived, answered or not yet: lets a test
   * wait until the mirror has an upstream request in flight.
   */
  public long arrived(String method, String uriRegex) {
    return arrivals.stream().filter(s -> s.method().equals(method) && s.uri().matches(uriRegex)).count();
  }

  /** Forgets the recorded exchanges. */
  public void clear() {
    seen.clear();
    arrivals.clear();
  }

  /** A request condition for {@link #fault}: this method and a URI matching {@code uriRegex}. */
  public static BiPredicate<String, String> matching(String method, String uriRegex) {
    return (m, uri) -> m.equals(method) && uri.matches(uriRegex);
  }

  /** Applies {@code fault} to every request whose (method, URI) matches {@code when}. */
  public void fault(BiPredicate<String, String> when, Fault fault) {
    fault(when, fault, Integer.MAX_VALUE);
  }

  /**
   * Applies {@code fault} to the next {@code times} requests matching {@code when}; later ones pass through.
   * The oldest rule with uses left wins when several match.
   */
  public void fault(BiPredicate<String, String> when, Fault fault, int times) {
    rules.add(new Rule(when, fault, new AtomicInteger(times)));
  }

  public void clearFaults() {
    rules.clear();
  }

  /** Stops the forwarder; closing its Vertx instance closes the server and the client with it. */
  @Override
  public void close() {
    vertx.close().await();
  }

  private void handle(HttpServerRequest request) {
    // The request body must not flow before there is an upstream request to carry it.
    request.pause();
    arrivals.add(new Seen(request.method().name(), request.uri(), request.headers(), 0));
    Fault fault = takeFault(request.method().name(), request.uri());
    if (fault instanceof Fault.Status status) {
      answer(request, status);
    } else if (fault instanceof Fault.DelayHeaders delay) {
      vertx.setTimer(delay.delay().toMillis(), id -> forward(request, null));
    } else if (fault instanceof Fault.HeadersNever) {
      // Read the request off the connection, then leave it unanswered until the client gives up.
      request.resume();
    } else {
      forward(request, fault);
    }
  }

  private Fault takeFault(String method, String uri) {
    for (Rule rule : rules) {
      if (rule.when().test(method, uri) && rule.remaining().getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
        return rule.fault();
      }
    }
    return null;
  }

  private void answer(HttpServerRequest request, Fault.Status status) {
    record(request, status.status());
    // The body is not wanted, but it must be read off the connection before the next request.
    request.resume();
    HttpServerResponse response = request.response().setStatusCode(status.status());
    status.headers().forEach(response::putHeader);
    Buffer body = Buffer.buffer(status.body());
    response.putHeader(HttpHeaders.CONTENT_LENGTH, String.valueOf(body.length())).end(body);
  }

  private void forward(HttpServerRequest request, Fault fault) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    copyHeaders(request.headers(), headers);
    client.request(new RequestOptions().setMethod(request.method()).setURI(request.uri()).setHeaders(headers))
        .compose(upstream -> send(request, upstream))
        .onSuccess(response -> {
          if (fault instanceof Fault.HoldHeaders hold) {
            response.pause();
            Context context = vertx.getOrCreateContext();
            hold.release().thenRun(() -> context.runOnContext(v -> relay(request, response, null)));
          } else {
            relay(request, response, fault);
          }
        })
        .onFailure(error -> {
          record(request, 502);
          request.response().setStatusCode(502).end("forwarder: " + error);
        });
  }

  private static Future<HttpClientResponse> send(HttpServerRequest request, HttpClientRequest upstream) {
    if (request.headers().contains(HttpHeaders.CONTENT_LENGTH)
        || request.headers().contains(HttpHeaders.TRANSFER_ENCODING)) {
      return upstream.send(request);
    }
    // Piping an empty request would make it chunked, so bodiless requests are sent as they came.
    request.resume();
    return upstream.send();
  }

  private void relay(HttpServerRequest request, HttpClientResponse upstream, Fault fault) {
    record(request, upstream.statusCode());
    // The reason phrase is not copied: Vert.x recognises a 304 (which must not get a Content-Length) only
    // with its standard phrase.
    HttpServerResponse response = request.response().setStatusCode(upstream.statusCode());
    copyHeaders(upstream.headers(), response.headers());
    if (fault instanceof Fault.WithHeaders with) {
      with.headers().forEach(response.headers()::set);
      fault = with.body();
    }
    if (fault instanceof Fault.WithoutHeaders without) {
      without.names().forEach(response.headers()::remove);
      fault = without.body();
    }
    if (fault instanceof Fault.WithoutLength without) {
      response.headers().remove(HttpHeaders.CONTENT_LENGTH);
      response.setChunked(true);
      fault = without.body();
    }
    if (fault instanceof Fault.WrongLength wrong && upstream.headers().contains(HttpHeaders.CONTENT_LENGTH)) {
      long real = Long.parseLong(upstream.getHeader(HttpHeaders.CONTENT_LENGTH));
      response.headers().set(HttpHeaders.CONTENT_LENGTH, String.valueOf(real + wrong.delta()));
    }
    if (upstream.headers().contains(HttpHeaders.TRANSFER_ENCODING, HttpHeaders.CHUNKED, true)) {
      response.setChunked(true);
    }
    upstream.pipe()
        .endOnFailure(false)
        .to(new FaultyBody(vertx, response, fault))
        .onFailure(error -> {
          // Both sides must see the failure: a body cut short must never look like a complete one.
          response.reset();
          upstream.request().reset();
        });
  }

  private void record(HttpServerRequest request, int status) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap().addAll(request.headers());
    seen.add(new Seen(request.method().name(), request.uri(), headers, status));
  }

  private static void copyHeaders(MultiMap from, MultiMap to) {
    // Headers named in Connection are hop-by-hop too.
    Set<String> connectionOptions = new HashSet<>();
    for (String value : from.getAll(HttpHeaders.CONNECTION)) {
      for (String option : value.split(",")) {
        connectionOptions.add(option.trim().toLowerCase());
      }
    }
    from.forEach((name, value) -> {
      String lower = name.toLowerCase();
      if (!NOT_FORWARDED.contains(lower) && !connectionOptions.contains(lower)) {
        to.add(name, value);
      }
    });
  }

  /**
   * The client-facing response body, applying a body fault ({@link Fault.CutAfter}, {@link Fault.FlipByte},
   * {@link Fault.HoldAfter}, {@link Fault.Drip}, {@link Fault.LongBody}, {@link Fault.WrongLength}) chunk by chunk
   * and otherwise delegating, so backpressure works exactly as when piping to the response itself.
   */
  private static final class FaultyBody implements WriteStream<Buffer> {

    private static final int DRIP_TICK_MS = 100;
    private static final byte[] JUNK = "junk after the body\r\n".getBytes(StandardCharsets.US_ASCII);

    private final Vertx vertx;
    private final HttpServerResponse out;
    private final Fault fault;
    private long position;
    private Future<Void> lastWrite = Future.succeededFuture();
    private Buffer held;
    private Future<Void> released;
    private Handler<Void> drainHandler;
    // A drip: the bytes taken from the upstream but not yet sent, and the promise of their sending.
    private Buffer dripping;
    private int dripped;
    private Promise<Void> drippedAll;
    private long ticker;

    FaultyBody(Vertx vertx, HttpServerResponse out, Fault fault) {
      this.vertx = vertx;
      this.out = out;
      this.fault = fault;
    }

    @Override
    public Future<Void> write(Buffer chunk) {
      if (held != null) {
        held.appendBuffer(chunk);
        return Future.succeededFuture();
      }
      if (fault instanceof Fault.Drip drip) {
        return drip(chunk, drip.bytesPerSecond());
      }
      long start = position;
      position += chunk.length();
      if (fault instanceof Fault.HoldAfter hold && position > hold.bytes() && start <= hold.bytes()) {
        int keep = (int) (hold.bytes() - start);
        held = chunk.slice(keep, chunk.length()).copy();
        Future<Void> kept = out.write(chunk.slice(0, keep));
        // The rest follows only once the kept part is written: the release may run on another
        // thread, and a write from there could otherwise overtake it.
        released = kept.compose(v -> Future.fromCompletionStage(hold.release(), vertx.getOrCreateContext()))
            .compose(v -> {
              Buffer rest = held;
              held = null;
              return out.write(rest);
            });
        released.onComplete(r -> drained());
        return kept;
      }
      if (fault instanceof Fault.CutAfter cut && position > cut.bytes()) {
        int keep = (int) Math.max(0, cut.bytes() - start);
        // Failing only once the kept bytes are written lets them reach the client before the close.
        return out.write(chunk.slice(0, keep))
            .compose(v -> Future.failedFuture("body cut after " + cut.bytes() + " bytes"));
      }
      if (fault instanceof Fault.FlipByte flip && flip.offset() >= start && flip.offset() < position) {
        int at = (int) (flip.offset() - start);
        chunk = chunk.copy();
        chunk.setByte(at, (byte) (chunk.getByte(at) ^ 0xFF));
      }
      lastWrite = out.write(chunk);
      return lastWrite;
    }

    /**
     * Queues a chunk for the drip; the queue counts as full until it is sent, so the upstream
     * is read no faster than the drip. The write completes once the chunk is on its way.
     */
    private Future<Void> drip(Buffer chunk, int bytesPerSecond) {
      if (dripping == null) {
        dripping = chunk.copy();
        dripped = 0;
        drippedAll = Promise.promise();
        ticker = vertx.setPeriodic(DRIP_TICK_MS, id -> tick(bytesPerSecond));
      } else {
        dripping.appendBuffer(chunk);
      }
      return drippedAll.future();
    }

    private void tick(int bytesPerSecond) {
      if (out.closed()) {
        // The client gave up: failing the write fails the pipe, which lets go of the upstream.
        vertx.cancelTimer(ticker);
        drippedAll.tryFail("the client went away during a drip");
        return;
      }
      int n = Math.min(dripping.length() - dripped, Math.max(1, bytesPerSecond * DRIP_TICK_MS / 1000));
      lastWrite = out.write(dripping.slice(dripped, dripped + n).copy());
      dripped += n;
      if (dripped == dripping.length()) {
        vertx.cancelTimer(ticker);
        dripping = null;
        drippedAll.complete();
        drained();
      }
    }

    private void drained() {
      Handler<Void> drain = drainHandler;
      if (drain != null) {
        drainHandler = null;
        drain.handle(null);
      }
    }

    @Override
    public Future<Void> end() {
      if (held != null) {
        // The upstream finished while the body is held: end once the rest has been written.
        return released.compose(v -> out.end());
      }
      if (dripping != null) {
        return drippedAll.future().compose(v -> end());
      }
      if (fault instanceof Fault.LongBody longBody) {
        Buffer junk = Buffer.buffer(longBody.extra());
        for (int i = 0; i < longBody.extra(); i++) {
          junk.appendByte(JUNK[i % JUNK.length]);
        }
        // Failing closes the connection, once the extra bytes have reached the client.
        return lastWrite.compose(v -> out.write(junk))
            .compose(v -> Future.failedFuture("sent " + longBody.extra() + " bytes past the body"));
      }
      if (fault instanceof Fault.WrongLength) {
        // Never end the response: the connection closes right after the real body.
        return lastWrite.compose(v -> Future.failedFuture("body sent under a wrong Content-Length"));
      }
      return out.end();
    }

    @Override
    public WriteStream<Buffer> exceptionHandler(Handler<Throwable> handler) {
      out.exceptionHandler(handler);
      return this;
    }

    @Override
    public WriteStream<Buffer> setWriteQueueMaxSize(int maxSize) {
      out.setWriteQueueMaxSize(maxSize);
      return this;
    }

    @Override
    public boolean writeQueueFull() {
      return held != null || dripping != null || out.writeQueueFull();
    }

    @Override
    public WriteStream<Buffer> drainHandler(Handler<Void> handler) {
      drainHandler = handler;
      out.drainHandler(handler);
      return this;
    }
  }
}
