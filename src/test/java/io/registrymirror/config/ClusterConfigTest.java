package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The {@code cluster} section: its defaults, and an error that names the key for each mistake. */
class ClusterConfigTest {

  @Test
  void absentMeansAlone() {
    assertThat(ConfigLoader.parse("listen: 0.0.0.0:5000").cluster()).isNull();
  }

  @Test
  void staticMembersWithDefaults() {
    ClusterConfig c = ConfigLoader.parse("""
        cluster:
          members: [10.0.0.2:5701, 10.0.0.3:5701]
        """).cluster();
    assertThat(c.port()).isEqualTo(5701);
    assertThat(c.busPort()).isEqualTo(5702);
    assertThat(c.members()).containsExactly("10.0.0.2:5701", "10.0.0.3:5701");
    assertThat(c.dns()).isNull();
    assertThat(c.advertise()).isNull();
    assertThat(c.keepCopies()).isFalse();
  }

  @Test
  void dnsAdvertiseAndKeepCopies() {
    ClusterConfig c = ConfigLoader.parse("""
        cluster:
          port: 6000
          busPort: 6001
          dns: registry-mirror-peers.mirror.svc.cluster.local
          advertise: 10.0.0.1:5000
          keepCopies: true
        """).cluster();
    assertThat(c).isEqualTo(new ClusterConfig(6000, 6001, List.of(), "registry-mirror-peers.mirror.svc.cluster.local",
        "10.0.0.1:5000", true));
  }

  @Test
  void theEnvironmentSaysWhereThisReplicaIsReached() {
    MirrorConfig c = ConfigLoader.applyEnv(ConfigLoader.parse("cluster: {dns: peers.mirror.svc}"),
        Map.of("MIRROR_CLUSTER_ADVERTISE", "10.1.2.3:5000"));
    assertThat(c.cluster().advertise()).isEqualTo("10.1.2.3:5000");
    assertThatThrownBy(() -> ConfigLoader.applyEnv(ConfigLoader.parse("listen: 0.0.0.0:5000"),
        Map.of("MIRROR_CLUSTER_ADVERTISE", "10.1.2.3:5000")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("MIRROR_CLUSTER_ADVERTISE: ");
  }

  @Test
  void mistakesNameTheirKey() {
    assertError("cluster: {}", "cluster.members: ");
    assertError("cluster: {members: [a:1], dns: peers.svc}", "cluster.dns: ");
    assertError("cluster: {members: [a:1], port: 70000}", "cluster.port: ");
    assertError("cluster: {members: [a:1], port: 6000, busPort: 6000}", "cluster.busPort: ");
    assertError("cluster: {members: [nohost]}", "cluster.members[0]: ");
    assertError("cluster: {members: [a:0]}", "cluster.members[0]: ");
    assertError("cluster: {dns: 'not a name!'}", "cluster.dns: ");
    assertError("cluster: {dns: peers.svc, advertise: 0.0.0.0:5000}", "cluster.advertise: ");
    assertError("cluster: {dns: peers.svc, advertise: 10.0.0.1}", "cluster.advertise: ");
    assertError("cluster: {dns: peers.svc, keepCopies: yes please}", "cluster.keepCopies: ");
    assertError("cluster: {dns: peers.svc, member: [a:1]}", "cluster.member");
  }

  private static void assertError(String yaml, String message) {
    assertThatThrownBy(() -> ConfigLoader.parse(yaml))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith(message);
  }
}
