package io.registrymirror.oci;

import java.net.URI;

/**
 * The rules for a URL the mirror will send requests to (an upstream, a redirect, a token realm, a
 * webhook): absolute, {@code http} or {@code https} in any case (schemes are case-insensitive),
 * with a host; and when two such URLs are the same origin. Written once, so that what the
 * configuration accepts and what an upstream may name are the same.
 */
public final class HttpUrl {

  private HttpUrl() {}

  /** Whether {@code uri} is an absolute http(s) URL with a host. */
  public static boolean isHttp(URI uri) {
    return ("http".equalsIgnoreCase(uri.getScheme()) || isHttps(uri)) && uri.getHost() != null;
  }

  public static boolean isHttps(URI uri) {
    return "https".equalsIgnoreCase(uri.getScheme());
  }

  /** The port a request to {@code uri} goes to: its own, or its scheme's default. */
  public static int port(URI uri) {
    return uri.getPort() >= 0 ? uri.getPort() : isHttps(uri) ? 443 : 80;
  }

  /** Same scheme, host and port: where the same program is listening. */
  public static boolean sameOrigin(URI a, URI b) {
    return a.getScheme().equalsIgnoreCase(b.getScheme())
        && a.getHost().equalsIgnoreCase(b.getHost())
        && port(a) == port(b);
  }

  /** {@code scheme://host:port}, the port always written out. */
  public static String origin(URI uri) {
    return uri.getScheme() + "://" + uri.getHost() + ":" + port(uri);
  }
}
