package io.registrymirror.config;

import java.util.List;

/**
 * How replicas find each other and share their caches. Absent, the mirror runs alone.
 *
 * @param port the Hazelcast member port, which replicas join each other on
 * @param busPort the port of the event bus between replicas (tag moves)
 * @param members other replicas' {@code host:port} member addresses to join, when they are known
 *     in advance; empty when {@code dns} finds them
 * @param dns a DNS name whose addresses are the replicas' (a Kubernetes headless Service)
 * @param advertise {@code host:port} where the other replicas reach this one's registry API; null
 *     for this host's address and the listen port
 * @param keepCopies whether a replica keeps the blobs it fetched from their owner: off, each blob
 *     is stored once in the cluster and the caches' capacities add up
 */
public record ClusterConfig(int port, int busPort, List<String> members, String dns, String advertise,
    boolean keepCopies) {

  public static final int DEFAULT_PORT = 5701;

  public ClusterConfig {
    members = List.copyOf(members);
  }

  public ClusterConfig withAdvertise(String advertise) {
    return new ClusterConfig(port, busPort, members, dns, advertise, keepCopies);
  }
}
