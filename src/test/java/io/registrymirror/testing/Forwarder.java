package io.registrymirror.testing;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
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
  private volatile boolean keepHost;

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

  /**
   * The same, passing each request's Host header on as it came: for a target that checks it,
   * such as an S3 server, whose request signatures cover it.
   */
  public static Forwarder keepingHost(int targetPort) {
    Forwarder forwarder = start(targetPort);
    forwarder.keepHost = true;
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
    if (keepHost && request.headers().contains(HttpHeaders.HOST)) {
      headers.set(HttpHeaders.HOST, request.getHeader(HttpHeaders.HOST));
    }
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
}
