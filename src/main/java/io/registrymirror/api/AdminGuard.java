package io.registrymirror.api;

import io.netty.util.NetUtil;
import io.registrymirror.error.OciError;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * The one guard of the endpoints that change what the mirror holds (prefetch, cache
 * administration). With an admin token configured, a request needs {@code Authorization: Bearer
 * <token>}; without one, only a client on this host (a loopback address) is let in. It is apart
 * from the htpasswd users, who may pull but not administer.
 */
final class AdminGuard implements Handler<RoutingContext> {

  /** The paths it guards, each with everything below it. */
  static final List<String> PREFIXES = List.of(PrefetchHandler.PATH, CacheAdminHandler.PREFIX);

  static final String CHALLENGE = "Bearer realm=\"registry-mirror-admin\"";
  private static final String BEARER = "bearer ";

  /** The token's hash: compared in constant time, whatever the length of what a client sends. */
  private final byte[] tokenHash;

  /** @param token the admin token, or null to admit loopback clients only */
  AdminGuard(String token) {
    this.tokenHash = token == null ? null : sha256(token);
  }

  @Override
  public void handle(RoutingContext ctx) {
    if (tokenHash == null) {
      if (!isLoopback(ctx.request().remoteAddress())) {
        throw OciError.DENIED.exception("the admin API answers only on this host unless admin.token is set");
      }
      ctx.next();
      return;
    }
    String authorization = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    if (authorization == null || !authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
      throw OciError.UNAUTHORIZED.exception("the admin API needs Authorization: Bearer <admin token>")
          .withHeader("WWW-Authenticate", CHALLENGE);
    }
    if (!MessageDigest.isEqual(tokenHash, sha256(authorization.substring(BEARER.length()).trim()))) {
      throw OciError.UNAUTHORIZED.exception("the admin token is not valid")
          .withHeader("WWW-Authenticate", CHALLENGE);
    }
    ctx.next();
  }

  private static boolean isLoopback(SocketAddress remote) {
    // Parsed as a literal address only: no name is ever looked up.
    byte[] address = remote == null || remote.hostAddress() == null ? null
        : NetUtil.createByteArrayFromIpAddressString(remote.hostAddress());
    if (address == null) {
      return false;
    }
    try {
      return InetAddress.getByAddress(address).isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
  }

  private static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM provides SHA-256", e);
    }
  }
}
