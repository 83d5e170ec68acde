package io.registrymirror.oci;

import java.net.URI;

/**
 * The rule for a URL the mirror will send requests to (an upstream, a token realm, a webhook):
 * absolute, {@code http} or {@code https}, with a host. Written once, so that what the
 * configuration accepts and what an upstream may name are the same.
 */
public final class HttpUrl {

  private HttpUrl() {}

  /** Whether {@code uri} is an absolute http(s) URL with a host. */
  public static boolean isHttp(URI uri) {
    return ("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) && uri.getHost() != null;
  }
}
