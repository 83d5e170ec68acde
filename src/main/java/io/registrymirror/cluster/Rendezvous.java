package io.registrymirror.cluster;

import io.registrymirror.oci.Digest;
import java.util.List;

/**
 * Rendezvous (highest-random-weight) hashing: each blob goes to the replica whose weight for it
 * is highest. Every replica computes the same owner from the same list, with no coordination;
 * when a replica joins or leaves, only the blobs it wins or owned change owner (about 1/N of
 * them), so the caches of the others stay useful.
 */
public final class Rendezvous {

  private Rendezvous() {}

  /** The owner of {@code digest} among {@code replicas} (not empty), named as they are. */
  public static String owner(List<String> replicas, Digest digest) {
    return owner(replicas, prefix(digest.hex()));
  }

  /** The owner of anything else named by a string (a tag), among {@code replicas} (not empty). */
  public static String owner(List<String> replicas, String name) {
    return owner(replicas, mix(hash(name)));
  }

  private static String owner(List<String> replicas, long key) {
    String best = null;
    long bestWeight = 0;
    for (String replica : replicas) {
      long weight = mix(key ^ mix(hash(replica)));
      // Unsigned, and ties (as good as impossible) to the smaller name, so that all agree.
      if (best == null || Long.compareUnsigned(weight, bestWeight) > 0
          || weight == bestWeight && replica.compareTo(best) < 0) {
        best = replica;
        bestWeight = weight;
      }
    }
    return best;
  }

  /** A digest's hex is already uniformly random: its first 64 bits are the blob's key. */
  private static long prefix(String hex) {
    return Long.parseUnsignedLong(hex.substring(0, 16), 16);
  }

  /** FNV-1a over the name's characters. */
  private static long hash(String name) {
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < name.length(); i++) {
      h ^= name.charAt(i);
      h *= 0x100000001b3L;
    }
    return h;
  }

  /** SplitMix64's finalizer: every input bit flips about half the output bits. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
