package io.registrymirror.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.oci.Digest;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Who owns a blob: the same answer from any replica's list, spread evenly, and stable as replicas come and go. */
class RendezvousTest {

  private static final List<String> THREE = List.of("10.0.0.1:5000", "10.0.0.2:5000", "10.0.0.3:5000");

  private static List<Digest> digests(int n) {
    List<Digest> all = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      all.add(Digest.sha256(("blob " + i).getBytes(StandardCharsets.UTF_8)));
    }
    return all;
  }

  @Test
  void everyReplicaComputesTheSameOwnerWhateverTheOrderOfItsList() {
    List<String> reversed = new ArrayList<>(THREE);
    java.util.Collections.reverse(reversed);
    for (Digest digest : digests(1000)) {
      assertThat(Rendezvous.owner(reversed, digest)).isEqualTo(Rendezvous.owner(THREE, digest));
    }
  }

  @Test
  void blobsAreSpreadEvenlyOverTheReplicas() {
    Map<String, Integer> owned = new HashMap<>();
    for (Digest digest : digests(30_000)) {
      owned.merge(Rendezvous.owner(THREE, digest), 1, Integer::sum);
    }
    assertThat(owned).hasSize(3);
    // 10,000 each expected; a binomial's standard deviation here is about 82.
    owned.values().forEach(n -> assertThat(n).isBetween(9_600, 10_400));
  }

  @Test
  void aReplicaLeavingMovesOnlyTheBlobsItOwnedAndOneJoiningTakesOnlyItsShare() {
    List<String> four = new ArrayList<>(THREE);
    four.add("10.0.0.4:5000");
    int moved = 0;
    int taken = 0;
    List<Digest> all = digests(20_000);
    for (Digest digest : all) {
      String before = Rendezvous.owner(THREE, digest);
      String after = Rendezvous.owner(four, digest);
      if (!after.equals(before)) {
        // Only ever to the newcomer: no blob moves between the replicas that stay.
        assertThat(after).isEqualTo("10.0.0.4:5000");
        taken++;
      }
      String gone = Rendezvous.owner(THREE.subList(1, 3), digest);
      if (!gone.equals(before)) {
        assertThat(before).isEqualTo("10.0.0.1:5000");
        moved++;
      }
    }
    assertThat(taken).isBetween(4_600, 5_400);
    assertThat(moved).isBetween(6_300, 7_000);
  }
}
