package io.registrymirror.testing;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 over a plain socket, for what java.net.http will not send (broken framing, any
 * method, no Host) or cannot show (a body after a HEAD, whether the server closed the
 * connection), and from a chosen local address: Linux routes all of 127.0.0.0/8 to loopback, so
 * 127.0.0.2 is another client address to the server.
 */
public final class RawHttp {

  private final String host;
  private final int port;
  private final String localAddress;

  /** @param localAddress the client's address, e.g. 127.0.0.2; null for the system's choice */
  public RawHttp(String hostPort, String localAddress) {
    int colon = hostPort.lastIndexOf(':');
    this.host = hostPort.substring(0, colon);
    this.port = Integer.parseInt(hostPort.substring(colon + 1));
    this.localAddress = localAddress;
  }

  /**
   * An answer: status, headers (lower-case names, first value) and the body as its framing says;
   * {@code after} holds what the server sent beyond that before closing (empty when it closed
   * right after, null when it kept the connection open).
   */
  public record Answer(int status, Map<String, String> headers, byte[] body, byte[] after) {

    public String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    public String text() {
      return new String(body, ISO_8859_1);
    }

    public boolean closed() {
      return after != null && after.length == 0;
    }
  }

  /** A connection, opened and not yet used: for a test that holds it or writes slowly. */
  public Socket open() throws IOException {
    Socket socket = new Socket();
    if (localAddress != null) {
      socket.bind(new InetSocketAddress(localAddress, 0));
    }
    socket.connect(new InetSocketAddress(host, port), 5_000);
    return socket;
  }

  /** Sends {@code wire} as it is and reads one answer; {@code head} when it is an answer to a HEAD. */
  public Answer exchange(String wire, boolean head) throws IOException {
    try (Socket socket = open()) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(wire.getBytes(ISO_8859_1));
      socket.getOutputStream().flush();
      return read(socket, head);
    }
  }

  /** A GET of {@code path} with these extra header lines (each ending in CRLF). */
  public Answer get(String path, String headerLines) throws IOException {
    return exchange("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + headerLines + "Connection: close\r\n\r\n",
        false);
  }

  /** Reads one answer from {@code socket}, then whatever follows it for up to a second. */
  public static Answer read(Socket socket, boolean head) throws IOException {
    InputStream in = new BufferedInputStream(socket.getInputStream());
    String status = line(in);
    if (status == null) {
      throw new IOException("connection closed without an answer");
    }
    Map<String, String> headers = new LinkedHashMap<>();
    for (String h = line(in); h != null && !h.isEmpty(); h = line(in)) {
      int colon = h.indexOf(':');
      if (colon > 0) {
        headers.putIfAbsent(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
      }
    }
    String length = headers.get("content-length");
    byte[] body = head || length == null ? new byte[0] : in.readNBytes(Integer.parseInt(length));
    byte[] after;
    socket.setSoTimeout(1_000);
    try {
      after = in.readAllBytes();
    } catch (SocketTimeoutException open) {
      after = null;
    }
    return new Answer(Integer.parseInt(status.split(" ")[1]), headers, body, after);
  }

  /** One line, without its CRLF or LF; null at the end of the stream. */
  public static String line(InputStream in) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) >= 0) {
      if (b == '\n') {
        byte[] bytes = buf.toByteArray();
        int end = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
        return new String(bytes, 0, end, ISO_8859_1);
      }
      buf.write(b);
    }
    return buf.size() == 0 ? null : buf.toString(ISO_8859_1);
  }
}
