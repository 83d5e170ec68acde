package io.registrymirror.error;

import io.vertx.core.MultiMap;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * A failure that reaches the client as an OCI error; every layer fails its futures with one.
 *
 * <p>{@code detail} is shown to clients, so it names what was wrong with the request and never
 * internals or credentials. {@code headers} carries what the error needs on the wire, such as
 * {@code Retry-After} on 429 or {@code Content-Range} on 416.
 */
public final class RegistryException extends RuntimeException {

  private final OciError error;
  private final String detail;
  private final MultiMap headers = MultiMap.caseInsensitiveMultiMap();

  public RegistryException(OciError error, String detail) {
    this(error, detail, null);
  }

  public RegistryException(OciError error, String detail, Throwable cause) {
    super(error + (detail == null ? "" : ": " + detail), cause, false, cause != null);
    this.error = error;
    this.detail = detail;
  }

  public OciError error() {
    return error;
  }

  public String detail() {
    return detail;
  }

  public MultiMap headers() {
    return headers;
  }

  public RegistryException withHeader(String name, String value) {
    headers.set(name, value);
    return this;
  }

  /** {@code {"errors":[{"code","message","detail"}]}} */
  public JsonObject body() {
    JsonObject entry = new JsonObject().put("code", error.name()).put("message", error.message());
    if (detail != null) {
      entry.put("detail", detail);
    }
    return new JsonObject().put("errors", new JsonArray().add(entry));
  }
}
