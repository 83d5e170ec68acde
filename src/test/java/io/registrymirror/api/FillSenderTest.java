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
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
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

  private Vertx vertx;
  private HttpServer server;
  private final byte[] blob = new byte[SIZE];
  private Blob growing;
  private final HttpClient client = HttpClient.newHttpClient();

  @BeforeEach
  void start() throws Exception {
    new Random(7).nextBytes(blob);
    vertx = Vertx.vertx();
    // The server listens from one context, so its requests run on that context's event loop,
    // the thread on which the test grows, verifies or fails the blob.
    Context loop = vertx.getOrCreateContext();
    growing = new Blob(loop, blob);
    Promise<HttpServer> listening = Promise.promise();
    loop.runOnContext(v -> vertx.createHttpServer().requestHandler(req -> {
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
      new FillSender(growing, req.response(), start, end).start();
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
      readsAt.add(position + max - 1);
      return Future.succeededFuture(Unpooled.wrappedBuffer(bytes, (int) position, max));
    }

    @Override
    public void release() {
      released.incrementAndGet();
    }
  }
}
