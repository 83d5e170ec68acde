package io.registrymirror.cluster;

import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.EntryAdapter;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.replicatedmap.ReplicatedMap;
import io.registrymirror.log.EventLog;
import io.registrymirror.oci.Digest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;

/**
 * The replicas of a Hazelcast cluster that serve blobs. Hazelcast says which members are alive;
 * a replicated map says where each serving member's registry API is. A member is in the map from
 * the moment it listens until it starts to stop, so that no blob is routed to a replica that
 * cannot answer (yet or any more); a member that dies is dropped as soon as Hazelcast sees it
 * leave, whatever the map still says.
 */
public final class HazelcastPeers implements Peers {

  private static final EventLog LOG = EventLog.of(HazelcastPeers.class);
  /** Member id → the member's registry API, {@code host:port}. */
  private static final String SERVING = "registry-mirror.serving";
  private static final String SHARED = "registry-mirror.shared";
  private static final String SECRET = "peer-secret";

  private final Vertx vertx;
  private final HazelcastInstance hazelcast;
  private final ReplicatedMap<String, String> serving;
  private final String self;
  private final String selfId;
  private final boolean keepCopies;
  private final String secret;
  /** The serving replicas' addresses, sorted; replaced whole on every change. */
  private volatile List<String> replicas = List.of();

  private HazelcastPeers(Vertx vertx, HazelcastInstance hazelcast, String self, boolean keepCopies, String secret) {
    this.vertx = vertx;
    this.hazelcast = hazelcast;
    this.serving = hazelcast.getReplicatedMap(SERVING);
    this.self = self;
    this.selfId = hazelcast.getCluster().getLocalMember().getUuid().toString();
    this.keepCopies = keepCopies;
    this.secret = secret;
  }

  /**
   * The peers of a Vert.x instance clustered by {@link ClusterVertx}; {@code self} is where the
   * others reach this replica. It is not announced as serving until {@link #announce}.
   */
  public static Future<HazelcastPeers> of(Vertx vertx, String self, boolean keepCopies) {
    HazelcastInstance hazelcast =
        ((HazelcastClusterManager) ((VertxInternal) vertx).clusterManager()).getHazelcastInstance();
    // Remote calls: off the event loop.
    return vertx.executeBlocking(() -> {
      String mine = HexFormat.of().formatHex(random());
      String shared = hazelcast.<String, String>getMap(SHARED).putIfAbsent(SECRET, mine);
      HazelcastPeers peers = new HazelcastPeers(vertx, hazelcast, self, keepCopies, shared == null ? mine : shared);
      peers.watch();
      return peers;
    });
  }

  private static byte[] random() {
    byte[] bytes = new byte[32];
    new SecureRandom().nextBytes(bytes);
    return bytes;
  }

  private void watch() {
    serving.addEntryListener(new EntryAdapter<>() {
      @Override
      public void onEntryEvent(EntryEvent<String, String> event) {
        update();
      }
    });
    hazelcast.getCluster().addMembershipListener(new MembershipListener() {
      @Override
      public void memberAdded(MembershipEvent event) {
        update();
      }

      @Override
      public void memberRemoved(MembershipEvent event) {
        update();
        // Its entry, left behind by a replica that died, goes too; any member may remove it.
        String id = event.getMember().getUuid().toString();
        vertx.executeBlocking(() -> serving.remove(id), false);
      }
    });
    update();
  }

  /** Recomputes the serving replicas: members alive that said where they serve. */
  private synchronized void update() {
    Set<String> alive = hazelcast.getCluster().getMembers().stream()
        .map(Member::getUuid).map(UUID::toString).collect(Collectors.toSet());
    List<String> now = new ArrayList<>();
    serving.forEach((id, address) -> {
      if (alive.contains(id)) {
        now.add(address);
      }
    });
    now.sort(null);
    if (!now.equals(replicas)) {
      replicas = List.copyOf(now);
      LOG.info("cluster.replicas", "serving", String.join(",", now), "self", self);
    }
  }

  /** Says that this replica serves blobs at its address: from now on it owns its share. */
  public Future<Void> announce() {
    return vertx.<Void>executeBlocking(() -> {
      serving.put(selfId, self);
      update();
      return null;
    });
  }

  /** Stops owning blobs, before this replica stops answering: the others stop asking it. */
  public Future<Void> leave() {
    return vertx.<Void>executeBlocking(() -> {
      serving.remove(selfId);
      update();
      return null;
    });
  }

  @Override
  public List<String> replicas() {
    return replicas;
  }

  @Override
  public String owner(Digest digest) {
    List<String> all = replicas;
    return all.isEmpty() ? null : other(Rendezvous.owner(all, digest));
  }

  @Override
  public String owner(String name) {
    List<String> all = replicas;
    return all.isEmpty() ? null : other(Rendezvous.owner(all, name));
  }

  /** The owner, unless it is this replica. */
  private String other(String owner) {
    return owner.equals(self) ? null : owner;
  }

  @Override
  public String self() {
    return self;
  }

  @Override
  public boolean keepCopies() {
    return keepCopies;
  }

  @Override
  public String secret() {
    return secret;
  }
}
