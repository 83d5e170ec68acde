package io.registrymirror.cluster;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;
import io.registrymirror.config.ClusterConfig;
import io.registrymirror.config.MirrorConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** A Vert.x instance that is a member of the replicas' Hazelcast cluster. */
public final class ClusterVertx {

  private ClusterVertx() {}

  /**
   * Joins the cluster: {@code options} are the mirror's own, {@code builder} has its metrics. The
   * Hazelcast member and the event bus announce the host of {@link #advertise}.
   */
  public static Future<Vertx> start(VertxBuilder builder, VertxOptions options, MirrorConfig mirror) {
    ClusterConfig config = mirror.cluster();
    String host = host(advertise(mirror));
    options.getEventBusOptions().setHost("0.0.0.0").setPort(config.busPort())
        .setClusterPublicHost(host).setClusterPublicPort(config.busPort());
    return builder.with(options).withClusterManager(new HazelcastClusterManager(hazelcast(config, host)))
        .buildClustered();
  }

  /** Where the other replicas reach this one's registry API: as configured, or this host's address. */
  public static String advertise(MirrorConfig mirror) {
    String configured = mirror.cluster().advertise();
    if (configured != null) {
      return configured;
    }
    try {
      return InetAddress.getLocalHost().getHostAddress() + ":" + mirror.port();
    } catch (UnknownHostException e) {
      throw new IllegalStateException("cluster.advertise is not set, and this host's address is unknown", e);
    }
  }

  private static String host(String hostPort) {
    String host = hostPort.substring(0, hostPort.lastIndexOf(':'));
    return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
  }

  /**
   * Vert.x's own Hazelcast settings (its maps for the event bus), with the mirror's network: a
   * fixed port, static members or a DNS name, no multicast, nothing sent home, and a member
   * given up for dead after 10 s without a heartbeat (Hazelcast's 60 s would route blobs to a
   * dead owner for a minute; a replica that finds its owner gone fetches from upstream meanwhile).
   */
  static Config hazelcast(ClusterConfig config, String host) {
    Config hz = ConfigUtil.loadConfig();
    hz.setClusterName("registry-mirror");
    hz.setProperty("hazelcast.phone.home.enabled", "false");
    hz.setProperty("hazelcast.logging.type", "slf4j");
    hz.setProperty("hazelcast.shutdownhook.enabled", "false");
    hz.setProperty("hazelcast.heartbeat.interval.seconds", "2");
    hz.setProperty("hazelcast.max.no.heartbeat.seconds", "10");
    // Hazelcast waits 5 s for more members before it forms or joins a cluster; replicas start
    // when a rollout needs them, and one that joins late is taken in like any other.
    hz.setProperty("hazelcast.wait.seconds.before.join", "1");
    NetworkConfig network = hz.getNetworkConfig();
    network.setPort(config.port()).setPortAutoIncrement(false).setPublicAddress(host + ":" + config.port());
    JoinConfig join = network.getJoin();
    join.getMulticastConfig().setEnabled(false);
    if (config.dns() != null) {
      join.getKubernetesConfig().setEnabled(true)
          .setProperty("service-dns", config.dns())
          .setProperty("service-port", Integer.toString(config.port()));
    } else {
      join.getTcpIpConfig().setEnabled(true).setMembers(config.members());
    }
    return hz;
  }
}
