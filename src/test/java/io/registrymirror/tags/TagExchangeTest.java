package io.registrymirror.tags;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.cluster.Peers;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A replica that joins takes another's tag records over the event bus, page by page: every
 * record once, with its history, however many pages they take.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class TagExchangeTest {

  private final Vertx vertx = Vertx.vertx();

  @AfterEach
  void close() {
    vertx.close().await();
  }

  @Test
  void aJoiningReplicaTakesEveryRecordOfAnother() {
    Map<TagKey, TagRecord> theirs = new ConcurrentHashMap<>();
    // Two and a half pages, each tag with a move in its history.
    for (int i = 0; i < 640; i++) {
      Descriptor before = new Descriptor("application/vnd.oci.image.manifest.v1+json", digest(2 * i), 500);
      Descriptor after = new Descriptor("application/vnd.oci.image.manifest.v1+json", digest(2 * i + 1), 600);
      TagRecord first = TagRecord.first(before, "application/json", 1_000, null);
      theirs.put(new TagKey("docker.io", new RepositoryName("team/app" + i), "latest"),
          first.checked(after, "application/json", 2_000, TagMove.Seen.REFRESH, 10));
    }
    Map<TagKey, TagRecord> ours = new ConcurrentHashMap<>();
    Upstreams none = new Upstreams(List.of());
    new TagExchange(vertx, new TwoReplicas("b:5000"), none).serve(new Records(theirs));
    int read = new TagExchange(vertx, new TwoReplicas("a:5000"), none).catchUp(new Records(ours)).await();

    assertThat(read).isEqualTo(640);
    assertThat(ours).isEqualTo(theirs);
  }

  @Test
  void aReplicaAloneHasNothingToTake() {
    Map<TagKey, TagRecord> ours = new ConcurrentHashMap<>();
    assertThat(new TagExchange(vertx, Peers.ALONE, new Upstreams(List.of())).catchUp(new Records(ours)).await())
        .isZero();
  }

  private static Digest digest(int n) {
    return Digest.parse("sha256:" + String.format("%064x", n));
  }

  /** Two replicas, a:5000 and b:5000, as {@code self} sees them; tags and blobs are not asked about. */
  private record TwoReplicas(String self) implements Peers {
    @Override public String owner(Digest digest) { throw new UnsupportedOperationException(); }
    @Override public String owner(String name) { throw new UnsupportedOperationException(); }
    @Override public boolean keepCopies() { return false; }
    @Override public String secret() { return "secret"; }
    @Override public List<String> replicas() { return List.of("a:5000", "b:5000"); }
  }

  /** A replica's records, taken as they come. */
  private record Records(Map<TagKey, TagRecord> held) implements TagExchange.Local {
    @Override
    public Future<Resolution> revalidateHere(UpstreamClient upstream, TagKey key, String accept, TagMove.Seen seen) {
      return Future.failedFuture("not asked here");
    }

    @Override
    public Future<Void> record(TagKey key, String accept, Descriptor found, TagMove.Seen seen) {
      return Future.succeededFuture();
    }

    @Override
    public Collection<Map.Entry<TagKey, TagRecord>> records() {
      return held.entrySet();
    }

    @Override
    public Future<Void> adopt(TagKey key, TagRecord theirs) {
      assertThat(held.putIfAbsent(key, theirs)).as("%s taken twice", key).isNull();
      return Future.succeededFuture();
    }
  }
}
