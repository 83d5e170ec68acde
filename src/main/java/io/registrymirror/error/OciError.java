package io.registrymirror.error;

/** The error codes of the distribution spec, each with the HTTP status it is always sent with. */
public enum OciError {
  BLOB_UNKNOWN(404, "blob unknown to registry"),
  DIGEST_INVALID(400, "provided digest did not match uploaded content"),
  MANIFEST_INVALID(400, "manifest invalid"),
  MANIFEST_UNKNOWN(404, "manifest unknown"),
  NAME_INVALID(400, "invalid repository name"),
  NAME_UNKNOWN(404, "repository name not known to registry"),
  TAG_INVALID(400, "manifest tag did not match URI"),
  PAGINATION_NUMBER_INVALID(400, "invalid number of results requested"),
  RANGE_INVALID(416, "invalid content range"),
  UNAUTHORIZED(401, "authentication required"),
  DENIED(403, "requested access to the resource is denied"),
  UNSUPPORTED(405, "the operation is unsupported"),
  TOOMANYREQUESTS(429, "too many requests"),
  UNKNOWN(500, "unknown error"),
  UNAVAILABLE(503, "service unavailable");

  private final int status;
  private final String message;

  OciError(int status, String message) {
    this.status = status;
    this.message = message;
  }

  public int status() {
    return status;
  }

  public String message() {
    return message;
  }

  public RegistryException exception(String detail) {
    return new RegistryException(this, detail);
  }

  public RegistryException exception(String detail, Throwable cause) {
    return new RegistryException(this, detail, cause);
  }
}
