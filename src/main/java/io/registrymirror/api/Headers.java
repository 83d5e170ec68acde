package io.registrymirror.api;

/** Header names the registry API uses beyond the standard HTTP ones. */
final class Headers {

  static final String API_VERSION = "Docker-Distribution-API-Version";
  static final String API_VERSION_VALUE = "registry/2.0";
  static final String CONTENT_DIGEST = "Docker-Content-Digest";
  /** Echoes containerd's {@code ns} parameter, as the spec asks of a proxy that honours it. */
  static final String NAMESPACE = "OCI-Namespace";
  /** hit, miss or stale: whether the answer came from the cache, and how fresh it is. */
  static final String CACHE_STATUS = "X-Mirror-Cache";

  static final String RANGE = "Range";
  static final String LINK = "Link";

  private Headers() {}
}
