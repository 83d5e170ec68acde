package io.registrymirror.config;

import static io.registrymirror.config.ConfigValues.count;
import static io.registrymirror.config.ConfigValues.hostPort;
import static io.registrymirror.config.ConfigValues.list;
import static io.registrymirror.config.ConfigValues.text;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/** Reads the {@code cluster} section into a {@link ClusterConfig}. */
final class ClusterSection {

  static final String[] KEYS = {"port", "busPort", "members", "dns", "advertise", "keepCopies"};

  private ClusterSection() {}

  static ClusterConfig parse(JsonNode node) {
    int port = port(node, "port", ClusterConfig.DEFAULT_PORT);
    int busPort = port(node, "busPort", port + 1);
    if (busPort == port) {
      throw new ConfigException("cluster.busPort", "must differ from cluster.port (" + port + ")");
    }
    List<String> members = list(node, "cluster.members", "host:port addresses", (key, value) -> {
      String member = text(value, key);
      ConfigValues.HostPort hp = hostPort(key, member);
      if (hp.port() == 0) {
        throw new ConfigException(key, "needs a port: '" + member + "'");
      }
      return member;
    });
    String dns = node.has("dns") ? text(node.get("dns"), "cluster.dns") : null;
    if (dns != null && !dns.matches("[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")) {
      throw new ConfigException("cluster.dns", "must be a DNS name: '" + dns + "'");
    }
    if (members.isEmpty() == (dns == null)) {
      throw new ConfigException(dns == null ? "cluster.members" : "cluster.dns",
          "the replicas are found by cluster.members or by cluster.dns: give one of them");
    }
    return new ClusterConfig(port, busPort, members, dns,
        node.has("advertise") ? advertise("cluster.advertise", text(node.get("advertise"), "cluster.advertise")) : null,
        bool(node, "keepCopies"));
  }

  /** Where other replicas reach this one: a host other replicas can resolve, and a port. */
  static String advertise(String key, String value) {
    ConfigValues.HostPort hp = hostPort(key, value);
    if (hp.port() == 0 || value.startsWith(":") || hp.host().equals("0.0.0.0") || hp.host().equals("::")) {
      throw new ConfigException(key, "must be the host:port other replicas reach this one at: '" + value + "'");
    }
    return value;
  }

  private static int port(JsonNode node, String field, int fallback) {
    int port = count(node, "cluster", field, fallback, 1);
    if (port > 65535) {
      throw new ConfigException("cluster." + field, "must be a port from 1 to 65535");
    }
    return port;
  }

  private static boolean bool(JsonNode node, String field) {
    if (!node.has(field)) {
      return false;
    }
    if (!node.get(field).isBoolean()) {
      throw new ConfigException("cluster." + field, "must be true or false");
    }
    return node.get(field).booleanValue();
  }
}
