package io.registrymirror.upstream;

import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.oci.HttpUrl;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Where the mirror may go when an upstream's answer names another host: a redirect's target (a
 * CDN, a regional registry) or a token realm. Such a host may not resolve to a loopback,
 * link-local or private address, so that an upstream cannot turn the mirror against its own
 * network (a cloud metadata service, an admin port on localhost), unless the upstream itself
 * lives on such an address or the host is listed in {@code allowPrivateHosts}.
 *
 * <p>The name is resolved once, off the event loop, and the request then goes to exactly the
 * address that was checked: a DNS answer that changes between check and connect (rebinding)
 * cannot slip an internal address past the check.
 */
final class RemoteHosts {

  /** Name resolution, replaceable so that tests can give any answer without a network. */
  interface Resolver {
    InetAddress[] resolve(String host) throws UnknownHostException;
  }

  private final Vertx vertx;
  private final String upstream;
  private final String upstreamHost;
  private final Set<String> allowed;
  private final Resolver resolver;
  private volatile Future<Boolean> upstreamInternal;

  RemoteHosts(Vertx vertx, UpstreamConfig config) {
    this(vertx, config, InetAddress::getAllByName);
  }

  RemoteHosts(Vertx vertx, UpstreamConfig config, Resolver resolver) {
    this.vertx = vertx;
    this.upstream = config.name();
    this.upstreamHost = bare(config.url().getHost());
    this.allowed = config.allowPrivateHosts().stream().map(RemoteHosts::bare).collect(Collectors.toUnmodifiableSet());
    this.resolver = resolver;
  }

  /**
   * The address to send a request for {@code url} to, or a failure that says why the host may not
   * be contacted; {@code what} names the request for the message, e.g. "a redirect".
   */
  Future<SocketAddress> address(URI url, String what) {
    String host = bare(url.getHost());
    int port = HttpUrl.port(url);
    return resolve(host)
        .recover(e -> Future.failedFuture(OciError.UNAVAILABLE.exception("upstream " + upstream + " sent "
            + what + " to " + host + ", which does not resolve")))
        .compose(addresses -> {
          InetAddress chosen = choose(host, addresses, false, allowed);
          if (chosen != null) {
            return Future.succeededFuture(chosen);
          }
          return upstreamIsInternal().map(internal -> {
            InetAddress permitted = choose(host, addresses, internal, allowed);
            if (permitted == null) {
              throw OciError.UNAVAILABLE.exception("upstream " + upstream + " sent " + what + " to " + host
                  + ", which resolves to a loopback, link-local or private address (allowPrivateHosts lists "
                  + "hosts that may)");
            }
            return permitted;
          });
        })
        .map(a -> SocketAddress.inetSocketAddress(port, a.getHostAddress()));
  }

  /** Whether the configured upstream itself is on an internal address: then so may its CDN be. */
  private Future<Boolean> upstreamIsInternal() {
    Future<Boolean> known = upstreamInternal;
    if (known != null) {
      return known;
    }
    Future<Boolean> answer = resolve(upstreamHost)
        .map(addresses -> Arrays.stream(addresses).anyMatch(RemoteHosts::isInternal));
    // Only an answer is kept: a failed lookup is tried again next time.
    return answer.onSuccess(b -> upstreamInternal = answer);
  }

  private Future<InetAddress[]> resolve(String host) {
    return vertx.executeBlocking(() -> resolver.resolve(host), false);
  }

  /**
   * The address to connect to among those {@code host} resolved to, or null if it may not be
   * contacted: every address must be public (a name with one internal address among public ones
   * is as dangerous as one with only that), unless the upstream is itself internal or the host is
   * allowed by name.
   */
  static InetAddress choose(String host, InetAddress[] addresses, boolean upstreamInternal,
      Set<String> allowedHosts) {
    if (addresses.length == 0) {
      return null;
    }
    boolean anyInternal = Arrays.stream(addresses).anyMatch(RemoteHosts::isInternal);
    if (anyInternal && !upstreamInternal && !allowedHosts.contains(host.toLowerCase(Locale.ROOT))) {
      return null;
    }
    return addresses[0];
  }

  /**
   * Loopback, link-local (169.254/16 with the cloud metadata services, fe80::/10), private
   * (10/8, 172.16/12, 192.168/16, fc00::/7), carrier-grade NAT (100.64/10), unspecified,
   * multicast and reserved addresses; IPv4 addresses embedded in NAT64 and 6to4 IPv6 addresses
   * count as what they embed. Java already turns IPv4-mapped IPv6 addresses into IPv4 ones.
   */
  static boolean isInternal(InetAddress a) {
    if (a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress()
        || a.isAnyLocalAddress() || a.isMulticastAddress()) {
      return true;
    }
    byte[] b = a.getAddress();
    if (a instanceof Inet4Address) {
      return internalV4(b[0] & 0xff, b[1] & 0xff, b[2] & 0xff);
    }
    if (a instanceof Inet6Address) {
      if ((b[0] & 0xfe) == 0xfc) {
        return true;
      }
      boolean nat64 = b[0] == 0x00 && b[1] == 0x64 && (b[2] & 0xff) == 0xff && (b[3] & 0xff) == 0x9b;
      if (nat64) {
        return internalV4(b[12] & 0xff, b[13] & 0xff, b[14] & 0xff);
      }
      if (b[0] == 0x20 && b[1] == 0x02) {
        return internalV4(b[2] & 0xff, b[3] & 0xff, b[4] & 0xff);
      }
      boolean compatible = true;
      for (int i = 0; i < 12; i++) {
        compatible &= b[i] == 0;
      }
      return compatible;
    }
    return true;
  }

  private static boolean internalV4(int b0, int b1, int b2) {
    return b0 == 0 || b0 == 10 || b0 == 127
        || (b0 == 100 && b1 >= 64 && b1 < 128)
        || (b0 == 169 && b1 == 254)
        || (b0 == 172 && b1 >= 16 && b1 < 32)
        || (b0 == 192 && b1 == 168)
        || (b0 == 192 && b1 == 0 && b2 == 0)
        || (b0 == 198 && (b1 == 18 || b1 == 19))
        || b0 >= 224;
  }

  /** {@code [::1]} as a URL writes it is {@code ::1} to a resolver. */
  private static String bare(String host) {
    return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
  }
}
