package io.registrymirror.testing;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The ports and configuration of a cluster of replicas on loopback: each replica's registry API,
 * Hazelcast member and event bus port, every member listed in every replica's configuration.
 */
public final class ClusterPlan {

  private static final Pattern REPLICAS = Pattern.compile("(?m)^mirror_cluster_replicas (\\S+)$");

  private final int[] http;
  private final int[] member;
  private final int[] bus;

  public ClusterPlan(int replicas) throws IOException {
    http = new int[replicas];
    member = new int[replicas];
    bus = new int[replicas];
    // A port free now may be handed out again by the next ask: each must differ from the rest.
    Set<Integer> taken = new HashSet<>();
    for (int i = 0; i < replicas; i++) {
      http[i] = distinctFreePort(taken);
      member[i] = distinctFreePort(taken);
      bus[i] = distinctFreePort(taken);
    }
  }

  private static int distinctFreePort(Set<Integer> taken) throws IOException {
    int port;
    do {
      port = MirrorProcess.freePort();
    } while (!taken.add(port));
    return port;
  }

  public int size() {
    return http.length;
  }

  public int httpPort(int replica) {
    return http[replica];
  }

  /** Where replica {@code i} serves, as the others know it. */
  public String advertised(int replica) {
    return "127.0.0.1:" + http[replica];
  }

  /** Every replica's advertised address. */
  public List<String> advertised() {
    List<String> all = new ArrayList<>();
    for (int i = 0; i < size(); i++) {
      all.add(advertised(i));
    }
    return all;
  }

  /** Replica {@code i}'s whole configuration: one upstream {@code local}, and {@code extra} cluster keys. */
  public String yaml(int replica, Path cacheDir, String upstreamUrl, String upstreamKeys, String clusterKeys) {
    List<String> members = new ArrayList<>();
    for (int m : member) {
      members.add("127.0.0.1:" + m);
    }
    return """
        listen: 127.0.0.1:%d
        cache:
          dir: %s
        upstreams:
          local:
            url: %s
            default: true
        %s
        cluster:
          port: %d
          busPort: %d
          members: [%s]
          advertise: %s
        %s
        """.formatted(http[replica], cacheDir, upstreamUrl, upstreamKeys.indent(4), member[replica], bus[replica],
        String.join(", ", members), advertised(replica), clusterKeys.indent(2));
  }

  /** The serving replicas a mirror's {@code /metrics} says it sees; -1 when it says nothing. */
  public static double servingReplicas(String metrics) {
    Matcher m = REPLICAS.matcher(metrics);
    return m.find() ? Double.parseDouble(m.group(1)) : -1;
  }
}
