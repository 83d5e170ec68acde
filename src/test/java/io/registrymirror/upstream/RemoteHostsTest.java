package io.registrymirror.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.error.RegistryException;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.assertj.core.api.Assertions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Which hosts an upstream can send the mirror to. Every address here is made from its bytes or
 * given by a fake resolver: nothing is looked up and nothing is connected to.
 */
class RemoteHostsTest {

  private final Vertx vertx = Vertx.vertx();

  @AfterEach
  void close() {
    vertx.close().await();
  }

  @Test
  void internalAddressesAreRecognised() throws Exception {
    for (String internal : List.of("127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe", "2002:a00:1::", "::10.0.0.1")) {
      assertThat(RemoteHosts.isInternal(literal(internal))).as(internal).isTrue();
    }
    for (String external : List.of("8.8.8.8", "151.101.0.1", "172.32.0.1", "100.128.0.1", "192.169.0.1",
        "2606:4700::6810:84e5", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::")) {
      assertThat(RemoteHosts.isInternal(literal(external))).as(external).isFalse();
    }
  }

  @Test
  void aPublicUpstreamCannotSendTheMirrorToAnInternalAddress() throws Exception {
    InetAddress cdn = literal("151.101.0.1");
    InetAddress metadata = literal("169.254.169.254");
    assertThat(RemoteHosts.choose("cdn.example", new InetAddress[] {cdn}, false, Set.of())).isEqualTo(cdn);
    assertThat(RemoteHosts.choose("cdn.example", new InetAddress[] {metadata}, false, Set.of())).isNull();
    // One internal address among public ones is refused too: the connection could go to it.
    assertThat(RemoteHosts.choose("cdn.example", new InetAddress[] {cdn, metadata}, false, Set.of())).isNull();
    // Unless the upstream is itself internal, or the host is allowed by name.
    assertThat(RemoteHosts.choose("cdn.example", new InetAddress[] {metadata}, true, Set.of())).isEqualTo(metadata);
    assertThat(RemoteHosts.choose("CDN.example", new InetAddress[] {metadata}, false, Set.of("cdn.example")))
        .isEqualTo(metadata);
  }

  @Test
  void theCheckedAddressIsTheOneConnectedTo() throws Exception {
    // A resolver that answers with a public address first and an internal one after, as a
    // rebinding DNS server does: the mirror must use the answer it checked, and ask only once.
    AtomicInteger lookups = new AtomicInteger();
    Map<String, InetAddress> registry = Map.of("registry.example", literal("203.0.113.10"));
    RemoteHosts hosts = new RemoteHosts(vertx, config(List.of()), host -> {
      if (host.equals("cdn.example")) {
        return new InetAddress[] {literal(lookups.getAndIncrement() == 0 ? "151.101.0.1" : "127.0.0.1")};
      }
      return new InetAddress[] {registry.get(host)};
    });
    SocketAddress address = hosts.address(URI.create("https://cdn.example/blob?sig=1"), "a blob redirect").await();
    assertThat(address.host()).isEqualTo("151.101.0.1");
    assertThat(address.port()).isEqualTo(443);
    assertThat(lookups).hasValue(1);
  }

  @Test
  void internalTargetsAreRefusedUnlessAllowed() throws Exception {
    RemoteHosts.Resolver resolver = host -> switch (host) {
      case "registry.example" -> new InetAddress[] {literal("203.0.113.10")};
      case "cdn.example", "minio.internal" -> new InetAddress[] {literal("10.0.0.5")};
      default -> throw new UnknownHostException(host);
    };
    RemoteHosts strict = new RemoteHosts(vertx, config(List.of()), resolver);
    Assertions.assertThatThrownBy(() -> strict.address(URI.create("http://cdn.example:9000/x"), "a blob redirect").await())
        .isInstanceOf(RegistryException.class)
        .hasMessageContaining("cdn.example").hasMessageContaining("private address");
    Assertions.assertThatThrownBy(() -> strict.address(URI.create("http://nowhere.example/x"), "a blob redirect").await())
        .isInstanceOf(RegistryException.class).hasMessageContaining("does not resolve");

    RemoteHosts allowing = new RemoteHosts(vertx, config(List.of("minio.internal")), resolver);
    assertThat(allowing.address(URI.create("http://minio.internal:9000/x"), "a blob redirect").await())
        .isEqualTo(SocketAddress.inetSocketAddress(9000, "10.0.0.5"));
    Assertions.assertThatThrownBy(() -> allowing.address(URI.create("http://cdn.example/x"), "a blob redirect").await())
        .isInstanceOf(RegistryException.class);
  }

  @Test
  void anInternalUpstreamMayUseInternalHosts() throws Exception {
    RemoteHosts hosts = new RemoteHosts(vertx, config(List.of()), host -> new InetAddress[] {
        literal(host.equals("registry.example") ? "192.168.5.5" : "10.0.0.5")});
    assertThat(hosts.address(URI.create("http://cdn.example/x"), "a blob redirect").await().host())
        .isEqualTo("10.0.0.5");
  }

  @Test
  void credentialsGoToTheUpstreamsOwnOriginOrAListedHttpsRealm() {
    URI hub = URI.create("https://registry-1.docker.io");
    List<URI> hubRealms = UpstreamConfig.defaultTokenRealms(hub);
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://auth.docker.io/token"), hub, hubRealms)).isTrue();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("http://auth.docker.io/token"), hub, hubRealms)).isFalse();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://auth.docker.io:8443/token"), hub, hubRealms)).isFalse();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://evil.example/token"), hub, hubRealms)).isFalse();

    assertThat(UpstreamConfig.defaultTokenRealms(URI.create("https://index.docker.io"))).isEqualTo(hubRealms);
    assertThat(UpstreamConfig.defaultTokenRealms(URI.create("https://notdocker.io"))).isEmpty();

    URI ghcr = URI.create("https://ghcr.io");
    assertThat(UpstreamConfig.defaultTokenRealms(ghcr)).isEmpty();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://ghcr.io/token"), ghcr, List.of())).isTrue();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://ghcr.io:443/token"), ghcr, List.of())).isTrue();
    // The same host over plain http, or on another port, is not the upstream.
    assertThat(Authenticator.mayReceiveCredentials(URI.create("http://ghcr.io/token"), ghcr, List.of())).isFalse();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://ghcr.io:8443/token"), ghcr, List.of())).isFalse();

    URI local = URI.create("http://registry.lan:5000");
    assertThat(Authenticator.mayReceiveCredentials(URI.create("http://registry.lan:5000/auth"), local, List.of())).isTrue();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("http://registry.lan:5001/auth"), local, List.of())).isFalse();
    // A listed origin gets them over https only.
    List<URI> listed = List.of(URI.create("https://auth.lan"), URI.create("http://auth.lan"));
    assertThat(Authenticator.mayReceiveCredentials(URI.create("https://auth.lan/token"), local, listed)).isTrue();
    assertThat(Authenticator.mayReceiveCredentials(URI.create("http://auth.lan/token"), local, listed)).isFalse();
  }

  private static UpstreamConfig config(List<String> allowPrivateHosts) {
    String allow = allowPrivateHosts.isEmpty() ? "" : "\n    allowPrivateHosts: [" + String.join(", ", allowPrivateHosts) + "]";
    return ConfigLoader.parse("""
        upstreams:
          example:
            url: https://registry.example""" + allow + "\n").upstreams().get("example");
  }

  private static InetAddress literal(String ip) throws UnknownHostException {
    // An IP literal is parsed, never looked up.
    return InetAddress.getByName(ip);
  }
}
