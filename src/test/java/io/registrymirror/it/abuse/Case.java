package io.registrymirror.it.abuse;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import java.util.Arrays;
import java.util.List;

/**
 * One generated request. {@code rawWire}, when set, is sent byte for byte; otherwise the request
 * is made of method, target, headers and body.
 */
record Case(String category, String method, String target, List<String[]> headers, byte[] body,
    byte[] rawWire, Expectation expect) {

  /** The request as it goes on the wire when sent over a raw socket. */
  byte[] wire() {
    if (rawWire != null) {
      return rawWire;
    }
    return onTheWire(method, target, headers, body);
  }

  /** HTTP/1.1 with Connection: close, so the end of the answer is the end of the connection. */
  private static byte[] onTheWire(String method, String target, List<String[]> headers, byte[] body) {
    StringBuilder head = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\n")
        .append("Host: mirror.test\r\n");
    for (String[] h : headers) {
      head.append(h[0]).append(": ").append(h[1]).append("\r\n");
    }
    head.append("Connection: close\r\n\r\n");
    byte[] start = head.toString().getBytes(ISO_8859_1);
    if (body == null) {
      return start;
    }
    byte[] all = Arrays.copyOf(start, start.length + body.length);
    System.arraycopy(body, 0, all, start.length, body.length);
    return all;
  }
}
