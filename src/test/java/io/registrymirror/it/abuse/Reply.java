package io.registrymirror.it.abuse;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static java.nio.charset.StandardCharsets.UTF_8;

import io.vertx.core.json.JsonObject;
import java.util.Arrays;
import java.util.Map;

/** An answer: status, headers (lower-case names, first value), body; or why there was none. */
record Reply(int status, Map<String, String> headers, byte[] body, String failure) {

  static Reply failed(String why) {
    return new Reply(0, Map.of(), new byte[0], why);
  }

  String header(String name) {
    return headers.get(name);
  }

  long contentLength() {
    String v = headers.get("content-length");
    try {
      return v == null ? -1 : Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** The first OCI error code in the body, if it is the OCI JSON. */
  String code() {
    try {
      return new JsonObject(new String(body, UTF_8))
          .getJsonArray("errors").getJsonObject(0).getString("code");
    } catch (RuntimeException e) {
      return null;
    }
  }

  @Override
  public String toString() {
    if (failure != null) {
      return failure;
    }
    return status + " " + headers.getOrDefault("content-type", "") + " "
        + excerpt(Arrays.copyOf(body, Math.min(body.length, 200)));
  }

  static String excerpt(byte[] bytes) {
    String s = new String(bytes, 0, Math.min(bytes.length, 300), ISO_8859_1);
    StringBuilder out = new StringBuilder();
    for (char ch : s.toCharArray()) {
      if (ch == '\r') {
        out.append("\\r");
      } else if (ch == '\n') {
        out.append("\\n");
      } else if (ch < 0x20 || ch >= 0x7f) {
        out.append(String.format("\\x%02x", (int) ch));
      } else {
        out.append(ch);
      }
    }
    return bytes.length > 300 ? out + "... (" + bytes.length + " bytes)" : out.toString();
  }
}
