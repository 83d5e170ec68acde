package io.registrymirror.cluster;

import io.registrymirror.oci.Digest;
import java.util.List;

/**
 * The other replicas of a cluster, as the cache sees them: which one owns a blob, and the secret
 * that marks requests between them. A mirror that runs alone owns everything.
 */
public interface Peers {

  /** The {@code host:port} of the replica that owns {@code digest}, or null when this one does. */
  String owner(Digest digest);

  /** The {@code host:port} of the replica that owns what {@code name} names (a tag), or null when this one does. */
  String owner(String name);

  /** Whether a blob fetched from its owner is kept here too, rather than read once and deleted. */
  boolean keepCopies();

  /** Where the other replicas reach this one, {@code host:port}; null without a cluster. */
  String self();

  /** The secret a request from another replica carries in its marker; null without a cluster. */
  String secret();

  /** Where every serving replica, this one included, is reached, sorted; empty without a cluster. */
  List<String> replicas();

  /** No cluster: every blob is this mirror's own. */
  Peers ALONE = new Peers() {
    @Override
    public String owner(Digest digest) {
      return null;
    }

    @Override
    public String owner(String name) {
      return null;
    }

    @Override
    public boolean keepCopies() {
      return true;
    }

    @Override
    public String self() {
      return null;
    }

    @Override
    public String secret() {
      return null;
    }

    @Override
    public List<String> replicas() {
      return List.of();
    }
  };
}
