package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.Expectation.refused;

import io.registrymirror.testing.RawHttp;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Sends cases with java.net.http where it can express them, and over a raw socket where it
 * refuses (methods other than GET, raw dots, control characters, restricted or oversized
 * headers, bodies) and for every HEAD, whose absence of body only a raw read can prove.
 */
final class AbuseClient {

  /** How many requests are in flight at once. */
  private static final int CONCURRENCY = 16;

  private final String host;
  private final int port;
  private final RawHttp raw;
  private final HttpClient http = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  AbuseClient(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    this.host = hostPort.substring(0, colon);
    this.port = Integer.parseInt(hostPort.substring(colon + 1));
    this.raw = new RawHttp(hostPort, null);
  }

  List<Reply> sendAll(List<Case> cases) throws Exception {
    long started = System.nanoTime();
    ExecutorService pool = Executors.newFixedThreadPool(CONCURRENCY);
    try {
      List<Future<Reply>> futures = new ArrayList<>();
      for (Case c : cases) {
        futures.add(pool.submit(() -> send(c)));
      }
      List<Reply> replies = new ArrayList<>();
      for (Future<Reply> f : futures) {
        replies.add(f.get());
      }
      System.out.printf("%d requests in %d ms%n", cases.size(), (System.nanoTime() - started) / 1_000_000);
      return replies;
    } finally {
      pool.shutdownNow();
    }
  }

  Reply send(Case c) {
    HttpRequest request = c.method().equals("GET") && c.rawWire() == null && c.body() == null
        && !c.target().contains("..") && !c.target().contains("#") ? javaRequest(c) : null;
    return request == null ? exchangeRaw(c.wire(), c.method().equals("HEAD")) : exchange(request);
  }

  /**
   * The request for java.net.http, or null when it refuses to send it. (It would also drop a
   * fragment and normalise dot segments, so targets with those never come here.)
   */
  private HttpRequest javaRequest(Case c) {
    try {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://" + host + ":" + port + c.target()))
          .timeout(Duration.ofSeconds(20))
          .GET();
      for (String[] h : c.headers()) {
        b.header(h[0], h[1]);
      }
      return b.build();
    } catch (IllegalArgumentException refused) {
      return null;
    }
  }

  private Reply exchange(HttpRequest request) {
    try {
      HttpResponse<byte[]> r = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
      Map<String, String> headers = new LinkedHashMap<>();
      r.headers().map().forEach((k, v) -> headers.put(k.toLowerCase(Locale.ROOT), v.get(0)));
      return new Reply(r.statusCode(), headers, r.body(), null);
    } catch (IOException e) {
      return Reply.failed(e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Reply.failed("interrupted");
    }
  }

  private Reply exchangeRaw(byte[] wire, boolean head) {
    try (Socket socket = raw.open()) {
      socket.setSoTimeout(20_000);
      try {
        OutputStream out = socket.getOutputStream();
        out.write(wire);
        out.flush();
      } catch (IOException e) {
        // The mirror may answer and close before reading all of an oversized request: read on.
      }
      InputStream in = new BufferedInputStream(socket.getInputStream());
      String statusLine;
      Map<String, String> headers;
      int status;
      do {
        statusLine = RawHttp.line(in);
        if (statusLine == null) {
          return Reply.failed("connection closed without an answer");
        }
        String[] parts = statusLine.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/") || !parts[1].matches("\\d{3}")) {
          return Reply.failed("not an HTTP status line: " + statusLine);
        }
        status = Integer.parseInt(parts[1]);
        headers = new LinkedHashMap<>();
        for (String h = RawHttp.line(in); h != null && !h.isEmpty(); h = RawHttp.line(in)) {
          int colon = h.indexOf(':');
          if (colon > 0) {
            headers.putIfAbsent(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
          }
        }
      } while (status / 100 == 1); // 100 Continue precedes the real answer
      byte[] body;
      if (head || status == 204 || status == 304) {
        body = new byte[0];
      } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
        body = chunked(in);
      } else if (headers.containsKey("content-length")) {
        int length = Integer.parseInt(headers.get("content-length"));
        body = in.readNBytes(length);
        if (body.length < length) {
          return Reply.failed("body cut at " + body.length + " of " + length + " bytes");
        }
      } else {
        body = in.readAllBytes();
      }
      // The connection closes after the answer: anything before that is a body the answer
      // should not have had (on a HEAD) or bytes beyond its declared length.
      byte[] after = in.readAllBytes();
      if (after.length > 0) {
        return head ? new Reply(status, headers, after, null)
            : Reply.failed(after.length + " bytes after the answer: " + Reply.excerpt(after));
      }
      return new Reply(status, headers, body, null);
    } catch (IOException | RuntimeException e) {
      return Reply.failed(e.toString());
    }
  }

  private static byte[] chunked(InputStream in) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    while (true) {
      String size = RawHttp.line(in);
      if (size == null) {
        throw new IOException("chunked body cut short");
      }
      int n = Integer.parseInt(size.split(";")[0].trim(), 16);
      if (n == 0) {
        for (String trailer = RawHttp.line(in); trailer != null && !trailer.isEmpty(); trailer = RawHttp.line(in)) {
          // trailers are not used
        }
        return body.toByteArray();
      }
      byte[] chunk = in.readNBytes(n);
      if (chunk.length < n) {
        throw new IOException("chunk cut short");
      }
      body.writeBytes(chunk);
      RawHttp.line(in);
    }
  }
}
