package io.registrymirror.api;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.registrymirror.concurrent.GrowingBlob;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A client reading a blob that grows, through a real HTTP response, with no fill behind it: it
 * gets the bytes as they come but never the last one before the blob is verified, a range is cut
 * exactly, a failed blob breaks the transfer, and the hold is released once either way.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FillSenderTest {

  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final int SIZE = 3 * 256 * 1024 + 17;

  /** Room for two chunks on their way to clients, all clients together. */
  private static final long SEND_MEMORY = 2 * 256 * 1024;
  /** Longer than any test may take: only memory pressure can cut a client in time. */
  private static final Duration SEND_TIMEOUT = Duration.ofSeconds(60);
  /** Far more than loopback's socket buffers take from a client that does not read. */
  private static final int BIG = 32 * 1024 * 1024;

  /** More than loopback's socket buffers hold: a stalled client that has read this was not cut. */
  private static final int CUT_SEEN = 8 * 1024 * 1024;

  private Vertx vertx;
  private HttpServer server;
  private final byte[] blob = new byte[SIZE];
  private Blob growing;
  private Blob big;
  private SendMemory memory;
  /** Plenty of memory, and a short timeout. */
  private SendMemory roomy;
  private final HttpClient client = HttpClient.newHttpClient();

  @BeforeEach
  void start() throws Exception {
    new Random(7).nextBytes(blob);
    vertx = Vertx.vertx();
    // The server listens from one context, so its requests run on that context's event loop,
    // the thread on which the test grows, verifies or fails the blob.
    Context loop = vertx.getOrCreateContext();
    growing = new Blob(loop, blob);
    byte[] bigBytes = new byte[BIG];
    new Random(8).nextBytes(bigBytes);
    big = new Blob(loop, bigBytes);
    big.grow(BIG);
    big.verify();
    memory = new SendMemory(vertx, SEND_MEMORY, SEND_TIMEOUT);
    roomy = new SendMemory(vertx, BIG, Duration.ofSeconds(1));
    Promise<HttpServer> listening = Promise.promise();
    loop.runOnContext(v -> vertx.createHttpServer().requestHandler(req -> {
      if (req.path().startsWith("/big")) {
        req.response().putHeader("Content-Length", Integer.toString(BIG)).writeHead();
        new FillSender(big, req, 0, BIG, req.path().equals("/big") ? memory : roomy).start();
        return;
      }
      String range = req.getHeader("Range");
      long start = 0;
      long end = SIZE;
      if (range != null) {
        String[] bounds = range.substring("bytes=".length()).split("-");
        start = Long.parseLong(bounds[0]);
        end = Long.parseLong(bounds[1]) + 1;
        req.response().setStatusCode(206);
      }
      req.response().putHeader("Content-Length", Long.toString(end - start)).writeHead();
      new FillSender(growing, req, start, end, memory).start();
    }).listen(0).onComplete(listening));
    server = listening.future().toCompletionStage().toCompletableFuture().get();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @Test
  void theLastByteWaitsForVerificationThenTheWholeBlobArrives() throws Exception {
    InputStream body = open(null).body();
    growing.grow(SIZE);
    byte[] got = body.readNBytes(SIZE - 1);
    assertThat(got).isEqualTo(Arrays.copyOf(blob, SIZE - 1));
    assertThat(growing.readsAt).as("last byte of each read").allMatch(last -> last < SIZE - 1);
    growing.verify();
    assertThat(body.read()).isEqualTo(blob[SIZE - 1] & 0xff);
    assertThat(body.read()).isEqualTo(-1);
    eventually(WAIT, () -> growing.released.get() == 1, "the hold released");
  }

  @Test
  void aRangeIsSentExactlyWhileTheBlobGrows() throws Exception {
    InputStream body = open("bytes=1000-300000").body();
    growing.grow(200_000);
    growing.grow(SIZE);
    assertThat(body.readNBytes(300_000 - 1000)).isEqualTo(Arrays.copyOfRange(blob, 1000, 300_000));
    // A range's last byte, too, waits until the whole blob is verified.
    growing.verify();
    assertThat(body.read()).isEqualTo(blob[300_000] & 0xff);
    assertThat(body.read()).isEqualTo(-1);
    eventually(WAIT, () -> growing.released.get() == 1, "the hold released");
  }

  @Test
  void aFailedBlobBreaksTheTransferAndIsReleased() throws Exception {
    InputStream body = open(null).body();
    growing.grow(SIZE / 2);
    assertThat(body.readNBytes(SIZE / 2 - 1)).isEqualTo(Arrays.copyOf(blob, SIZE / 2 - 1));
    growing.fail();
    assertThatThrownBy(() -> body.readNBytes(SIZE)).isInstanceOf(IOException.class);
    eventually(WAIT, () -> growing.released.get() == 1, "the hold released");
  }

  /**
   * Clients that ask for a blob and stop reading hold at most the memory all chunks share, and
   * only until another client waits for it: then they are cut, long before the send timeout, and
   * the client from another address that reads is served ahead of their own later chunks and
   * gets the whole blob.
   */
  @Test
  void clientsThatStopReadingAreCutWhenOthersNeedTheirMemory() throws Exception {
    List<Socket> stalled = new ArrayList<>();
    try {
      for (int i = 0; i < 4; i++) {
        // From an address of their own: memory goes first to the address that holds least.
        stalled.add(stalledSocket("/big"));
      }
      eventually(WAIT, () -> memory.used() == SEND_MEMORY, "the stalled clients holding all the memory");

      HttpResponse<InputStream> reader = client.send(HttpRequest.newBuilder(
          URI.create("http://localhost:" + server.actualPort() + "/big")).build(),
          HttpResponse.BodyHandlers.ofInputStream());
      byte[] got = reader.body().readAllBytes();
      assertThat(got.length).isEqualTo(BIG);
      assertThat(got).isEqualTo(big.bytes);

      // Those that held the memory the reader needed were cut: their answers end after what the
      // sockets' buffers held (a few MiB). Those still waiting for memory then are sent the blob
      // once given it, as they read now: reading them stops at CUT_SEEN. One cut is enough.
      int cut = 0;
      for (Socket s : stalled) {
        if (cut > 0) {
          s.close();
          continue;
        }
        s.setSoTimeout((int) WAIT.toMillis());
        long seen = 0;
        int n = 0;
        try (InputStream in = s.getInputStream()) {
          while (seen < CUT_SEEN && (n = in.read(new byte[65536])) > 0) {
            seen += n;
          }
        } catch (IOException reset) {
          n = -1;
        }
        cut += n < 0 ? 1 : 0;
      }
      assertThat(cut).as("stalled clients cut").isPositive();
      eventually(WAIT, () -> big.released.get() == 5, "every hold released");
      assertThat(memory.used()).isZero();
    } finally {
      for (Socket s : stalled) {
        s.close();
      }
    }
  }

  /** With nobody waiting for memory, a client that stops reading is cut after the send timeout. */
  @Test
  void aClientThatStopsReadingIsCutAfterTheTimeout() throws Exception {
    try (Socket s = stalledSocket("/big-roomy")) {
      eventually(WAIT, () -> big.released.get() == 1, "the stalled client's hold released");
      assertThat(roomy.used()).isZero();
      s.setSoTimeout((int) WAIT.toMillis());
      long seen = 0;
      try (InputStream in = s.getInputStream()) {
        for (int n; seen < CUT_SEEN && (n = in.read(new byte[65536])) > 0; ) {
          seen += n;
        }
      } catch (IOException reset) {
        // cut: as good as the end of the stream
      }
      assertThat(seen).as("bytes before the cut").isLessThan(CUT_SEEN);
    }
  }

  /** A connection from an address of its own that asks for {@code path} and reads nothing. */
  private Socket stalledSocket(String path) throws IOException {
    Socket s = new Socket();
    s.setReceiveBufferSize(4096);
    s.bind(new InetSocketAddress("127.0.0.2", 0));
    s.connect(new InetSocketAddress("127.0.0.1", server.actualPort()));
    s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
    return s;
  }

  private HttpResponse<InputStream> open(String range) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(
        URI.create("http://localhost:" + server.actualPort() + "/blob"));
    if (range != null) {
      request.header("Range", range);
    }
    return client.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
  }

  /** A blob in memory that the test grows, verifies or fails by hand, on the event loop. */
  private static final class Blob implements GrowingBlob {

    private final Context loop;
    private final byte[] bytes;
    private long length;
    private boolean verified;
    private Throwable failure;
    private final List<Promise<Void>> waiters = new ArrayList<>();
    final List<Long> readsAt = new java.util.concurrent.CopyOnWriteArrayList<>();
    final AtomicInteger released = new AtomicInteger();

    Blob(Context loop, byte[] bytes) {
      this.loop = loop;
      this.bytes = bytes;
    }

    void grow(long to) throws Exception {
      onLoop(() -> length = to);
    }

    void verify() throws Exception {
      onLoop(() -> verified = true);
    }

    void fail() throws Exception {
      onLoop(() -> failure = new IOException("upstream broke off"));
    }

    private void onLoop(Runnable change) throws Exception {
      Promise<Void> done = Promise.promise();
      loop.runOnContext(v -> {
        change.run();
        List<Promise<Void>> woken = new ArrayList<>(waiters);
        waiters.clear();
        woken.forEach(w -> {
          if (failure == null) {
            w.complete();
          } else {
            w.fail(failure);
          }
        });
        done.complete();
      });
      done.future().toCompletionStage().toCompletableFuture().get();
    }

    @Override
    public long expectedSize() {
      return bytes.length;
    }

    @Override
    public boolean isVerified() {
      return verified;
    }

    @Override
    public Future<Long> available(long position) {
      if (failure != null) {
        return Future.failedFuture(failure);
      }
      long n = (verified ? length : Math.max(0, length - 1)) - position;
      if (n > 0 || verified) {
        return Future.succeededFuture(Math.max(0, n));
      }
      return awaitChange().compose(v -> available(position));
    }

    @Override
    public Future<Void> awaitChange() {
      if (failure != null) {
        return Future.failedFuture(failure);
      }
      if (verified) {
        return Future.succeededFuture();
      }
      Promise<Void> wake = Promise.promise();
      waiters.add(wake);
      return wake.future();
    }

    @Override
    public Future<ByteBuf> read(long position, int max) {
      if (bytes.length == SIZE) {
        readsAt.add(position + max - 1);
      }
      return Future.succeededFuture(Unpooled.wrappedBuffer(bytes, (int) position, max));
    }

    @Override
    public void release() {
      released.incrementAndGet();
    }
  }
}
