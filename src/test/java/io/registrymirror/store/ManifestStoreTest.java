package io.registrymirror.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.memory.BodyBudget;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Manifests on disk: the body alone under its digest, its media type beside it; files of the
 * earlier one-file format are converted, and one that does not verify is never served.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ManifestStoreTest {

  private static final String TYPE = "application/vnd.oci.image.manifest.v1+json";
  private static final byte[] BODY = "{\"schemaVersion\":2,\"layers\":[]}".getBytes(StandardCharsets.UTF_8);
  private static final Digest DIGEST = Digest.sha256(BODY);

  @TempDir
  Path dir;
  private Vertx vertx;
  private CacheLayout layout;
  private BodyBudget budget;

  @BeforeEach
  void open() throws Exception {
    vertx = Vertx.vertx();
    layout = new CacheLayout(dir);
    budget = new BodyBudget(vertx, 1 << 20, Duration.ofSeconds(5));
    Files.createDirectories(layout.tmp());
  }

  @AfterEach
  void close() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @Test
  void everyManifestFileHashesToItsNameAndItsTypeIsBesideIt() throws Exception {
    ManifestStore store = opened();
    get(store.put(new Manifest(DIGEST, TYPE, Buffer.buffer(BODY))));

    assertThat(Files.readAllBytes(layout.manifest(DIGEST))).isEqualTo(BODY);
    assertThat(Files.readString(layout.manifestType(DIGEST)).trim()).isEqualTo(TYPE);
    try (Stream<Path> files = Files.walk(layout.manifests())) {
      files.filter(Files::isRegularFile).forEach(f -> assertThat(hashOf(f)).endsWith(f.getFileName().toString()));
    }
    // A fresh store (nothing in memory) finds it on disk and reads it back whole.
    ManifestStore reopened = opened();
    assertThat(get(reopened.find(DIGEST))).contains(new Descriptor(TYPE, DIGEST, BODY.length));
    assertThat(get(reopened.load(DIGEST)).orElseThrow().body().getBytes()).isEqualTo(BODY);
    assertThat(budget.used()).isZero();
  }

  @Test
  void aFileOfTheEarlierFormatIsConvertedWhenLookedUp() throws Exception {
    Files.createDirectories(layout.manifest(DIGEST).getParent());
    Files.write(layout.manifest(DIGEST), concat((TYPE + "\n").getBytes(StandardCharsets.UTF_8), BODY));

    ManifestStore store = opened();
    assertThat(get(store.find(DIGEST))).contains(new Descriptor(TYPE, DIGEST, BODY.length));
    assertThat(Files.readAllBytes(layout.manifest(DIGEST))).isEqualTo(BODY);
    assertThat(Files.readString(layout.manifestType(DIGEST)).trim()).isEqualTo(TYPE);
    try (Stream<Path> tmp = Files.list(layout.tmp())) {
      assertThat(tmp).isEmpty();
    }
  }

  @Test
  void aFileThatDoesNotVerifyIsAbsentInEitherFormat() throws Exception {
    byte[] other = "{\"schemaVersion\":2}".getBytes(StandardCharsets.UTF_8);
    Files.createDirectories(layout.manifest(DIGEST).getParent());
    Files.write(layout.manifest(DIGEST), concat((TYPE + "\n").getBytes(StandardCharsets.UTF_8), other));
    ManifestStore store = opened();
    assertThat(get(store.find(DIGEST))).isEmpty();
    assertThat(layout.manifestType(DIGEST)).doesNotExist();

    // A body without a type (as a crash between the two renames cannot leave, but a hand can).
    Files.write(layout.manifest(DIGEST), BODY);
    Files.createDirectories(layout.manifestType(DIGEST).getParent());
    Files.writeString(layout.manifestType(DIGEST), TYPE + "\n");
    Files.write(layout.manifest(DIGEST), other);
    assertThat(get(store.find(DIGEST))).isEmpty();
    assertThat(get(store.load(DIGEST))).isEqualTo(Optional.empty());
  }

  private ManifestStore opened() throws Exception {
    ManifestStore store = new ManifestStore(vertx, layout, budget, new CacheIndex(vertx, layout, null, 0));
    get(store.open());
    return store;
  }

  private static String hashOf(Path file) {
    try {
      return Digest.sha256(Files.readAllBytes(file)).hex();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] all = new byte[a.length + b.length];
    System.arraycopy(a, 0, all, 0, a.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }

  private static <T> T get(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get();
  }
}
