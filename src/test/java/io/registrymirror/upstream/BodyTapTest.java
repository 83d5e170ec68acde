package io.registrymirror.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.registrymirror.concurrent.BodySink;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.TestCertificate;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.PemTrustOptions;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Blob bodies read below Vert.x, from the reference registry: the bytes as pushed, in Netty's
 * own buffers, none kept once the sink lets go, and the connection stops being read while the
 * sink is full.
 */
class BodyTapTest {

  private static final RepositoryName REPO = new RepositoryName("tap/test");

  private static ReferenceRegistry registry;
  private Vertx vertx;
  private Forwarder upstream;
  private UpstreamClient client;

  @BeforeAll
  static void startRegistry() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
  }

  @AfterAll
  static void stopRegistry() {
    registry.close();
  }

  @TempDir
  Path dir;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    upstream = Forwarder.start(registry.port());
    client = client(upstream.url(), new HttpClientOptions());
  }

  /** A client of the upstream at {@code url}, as the mirror makes them. */
  private UpstreamClient client(String url, HttpClientOptions base) throws Exception {
    Path file = dir.resolve("mirror.yaml");
    Files.writeString(file, "upstreams:\n  local:\n    url: " + url + "\n    default: true\n");
    UpstreamConfig config = ConfigLoader.load(file, Map.of()).upstreams().get("local");
    HttpClientOptions options = new HttpClientOptions(base).setKeepAlive(true);
    HttpClient metadata = vertx.createHttpClient(options, new PoolOptions().setHttp1MaxSize(4));
    // One connection: a body that left the connection unusable would stall the next one.
    HttpClient content = vertx.createHttpClient(new HttpClientOptions(options).setMaxChunkSize(256 * 1024),
        new PoolOptions().setHttp1MaxSize(1));
    return new UpstreamClient(vertx, metadata, content, config,
        new MirrorMetrics(new SimpleMeterRegistry()), new BodyBudget(vertx, 1 << 20, Duration.ofSeconds(1)));
  }

  @AfterEach
  void stop() throws Exception {
    upstream.close();
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void bodiesArriveWholeInNettysBuffersAndNoneIsKeptAfterTheSinkLetsGo() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    // A body that comes with its headers in one read, and one of many reads.
    for (int size : new int[] {10, 5 * 1024 * 1024 + 7, 3}) {
      byte[] blob = random(size);
      Digest digest = Digest.parse(seeder.pushBlob(REPO.toString(), blob));
      Recording sink = new Recording(Long.MAX_VALUE);
      await(onContext(() -> client.getBlob(REPO, digest).compose(d -> d.pipeTo(sink, sink::received))));

      assertThat(sink.bytes.toByteArray()).as("%d bytes", size).isEqualTo(blob);
      assertThat(sink.ended).isTrue();
      assertThat(sink.direct).as("a plain connection's own direct buffers").doesNotContain(false);
      assertThat(sink.chunks).allSatisfy(chunk ->
          assertThat(chunk.refCnt()).as("released by the sink, held by no one else").isZero());
    }
    assertThat(upstream.count("GET", ".*/blobs/.*")).isEqualTo(3);
  }

  @Test
  void bodiesComeWholeOverTls() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    List<byte[]> blobs = List.of(random(17), random(3 * 1024 * 1024 + 1));
    List<Digest> digests = new ArrayList<>();
    for (byte[] blob : blobs) {
      digests.add(Digest.parse(seeder.pushBlob(REPO.toString(), blob)));
    }
    TestCertificate cert = TestCertificate.generate(dir, "registry", "IP:127.0.0.1");
    registry.restartTls(cert);
    try {
      UpstreamClient tls = client(registry.url(),
          new HttpClientOptions().setTrustOptions(new PemTrustOptions().addCertPath(cert.certPem().toString())));
      for (int i = 0; i < blobs.size(); i++) {
        Digest digest = digests.get(i);
        Recording sink = new Recording(Long.MAX_VALUE);
        await(onContext(() -> tls.getBlob(REPO, digest).compose(d -> d.pipeTo(sink, sink::received))));
        assertThat(sink.bytes.toByteArray()).isEqualTo(blobs.get(i));
        assertThat(sink.chunks).allSatisfy(chunk -> assertThat(chunk.refCnt()).isZero());
      }
    } finally {
      registry.restartTls(null);
    }
  }

  @Test
  void theConnectionIsNotReadWhileTheSinkIsFull() throws Exception {
    byte[] blob = random(48 * 1024 * 1024);
    Digest digest = Digest.parse(new ImageSeeder(registry.url()).pushBlob(REPO.toString(), blob));
    Recording sink = new Recording(1);
    Future<Void> done = onContext(() -> client.getBlob(REPO, digest).compose(d -> d.pipeTo(sink, sink::received)));

    await(sink.becameFull.future());
    long atFull = sink.received();
    // Watched for a while: the upstream could send all of it in this time, and the socket
    // buffers hold several MiB; what reaches the sink is at most the read that was under way.
    await(timer(500));
    long held = sink.received();
    assertThat(held - atFull).as("bytes taken after the sink was full").isLessThan(2L * 1024 * 1024);
    assertThat(done.isComplete()).isFalse();

    vertx.runOnContext(v -> sink.open());
    await(done);
    assertThat(sink.bytes.toByteArray()).isEqualTo(blob);
    assertThat(sink.chunks).allSatisfy(chunk -> assertThat(chunk.refCnt()).isZero());
  }

  /** Keeps a copy of every byte, releases each chunk at once, full from {@code fullAfter} bytes on until opened. */
  private static final class Recording implements BodySink {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    final List<ByteBuf> chunks = new ArrayList<>();
    final List<Boolean> direct = new ArrayList<>();
    final Promise<Void> becameFull = Promise.promise();
    private final long fullAfter;
    private boolean opened;
    private Runnable drained;
    boolean ended;

    Recording(long fullAfter) {
      this.fullAfter = fullAfter;
    }

    synchronized long received() {
      return bytes.size();
    }

    @Override
    public void write(ByteBuf chunk) {
      byte[] copy = new byte[chunk.readableBytes()];
      chunk.getBytes(chunk.readerIndex(), copy);
      synchronized (this) {
        bytes.writeBytes(copy);
      }
      chunks.add(chunk);
      direct.add(chunk.isDirect());
      chunk.release();
    }

    @Override
    public boolean full() {
      boolean full = !opened && received() >= fullAfter;
      if (full) {
        becameFull.tryComplete();
      }
      return full;
    }

    @Override
    public void onDrain(Runnable drained) {
      if (full()) {
        this.drained = drained;
      } else {
        drained.run();
      }
    }

    void open() {
      opened = true;
      Runnable d = drained;
      drained = null;
      if (d != null) {
        d.run();
      }
    }

    @Override
    public Future<Void> end() {
      ended = true;
      return Future.succeededFuture();
    }
  }

  private <T> Future<T> onContext(java.util.function.Supplier<Future<T>> work) {
    Promise<T> promise = Promise.promise();
    vertx.runOnContext(v -> work.get().onComplete(promise));
    return promise.future();
  }

  private Future<Long> timer(long ms) {
    Promise<Long> promise = Promise.promise();
    vertx.setTimer(ms, promise::complete);
    return promise.future();
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static byte[] random(int size) {
    byte[] data = new byte[size];
    new Random(size).nextBytes(data);
    return data;
  }
}
