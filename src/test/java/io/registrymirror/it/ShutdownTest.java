package io.registrymirror.it;

import static io.registrymirror.testing.Forwarder.matching;
import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.CacheContents;
import io.registrymirror.testing.Fault;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.MirrorUnderTest.Received;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGTERM to the mirror's process, as Kubernetes stops a pod: it takes no more connections,
 * lets the downloads in progress finish within {@code shutdownGrace}, cuts those that take
 * longer, leaves no partial file, writes its last log lines and exits 0, at once when idle.
 */
@Timeout(120)
class ShutdownTest extends MirrorTestBase {

  private static final long SMALL = 256 << 10;
  private static final long LARGE = 4 << 20;
  /** A slow upstream: the small blob takes about four seconds to arrive, the large one a minute. */
  private static final int DRIP = 64 * 1024;

  private static String small;
  private static String large;

  @TempDir
  static Path files;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private final ExecutorService threads = Executors.newCachedThreadPool();

  /** The exit status, and the time from the signal to the process's end. */
  private record Exit(int status, long ms) {}

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url());
    small = seeder.pushBlob("stop/blobs", ImageSeeder.randomFile(files, SMALL, 1));
    large = seeder.pushBlob("stop/blobs", ImageSeeder.randomFile(files, LARGE, 2));
  }

  @AfterEach
  void stopThreads() {
    threads.shutdownNow();
  }

  @Test
  void withoutTrafficTheProcessExitsWithinHalfASecondOfSigterm(@TempDir Path work) throws Exception {
    List<Long> times = new ArrayList<>();
    for (int round = 0; round < 5; round++) {
      try (MirrorProcess process = MirrorProcess.start(upstream.url(), work.resolve("cache"), work, List.of())) {
        // A client's keep-alive connection stays open, idle, as a container runtime's does.
        assertThat(http.send(HttpRequest.newBuilder(URI.create(process.url() + "/v2/")).build(),
            HttpResponse.BodyHandlers.discarding()).statusCode()).isEqualTo(200);
        Exit exit = terminate(process);
        assertThat(exit.status()).as("exit status; log:%n%s", process.log()).isZero();
        times.add(exit.ms());
        assertThat(lastLine(process)).as("the last line logged").contains("event=mirror.stopped");
      }
    }
    System.out.println("SIGTERM to exit without traffic, ms: " + times);
    // The median, as one round may be slowed by whatever else the machine runs at that moment.
    assertThat(times.stream().sorted().toList().get(times.size() / 2)).as("median of %s", times).isLessThan(500);
    assertThat(times).as("every round").allMatch(ms -> ms < 1_000);
  }

  @Test
  void aDownloadThatFitsInTheGraceCompletesAndTheProcessExitsZero(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    try (MirrorProcess process = startDripping(small, cache, work, "15s")) {
      Future<Received> download = downloadUnderWay(process, cache, small);
      long signalled = System.nanoTime();
      Future<Exit> exit = threads.submit(() -> terminate(process));

      // The listener closes at once, while the download goes on.
      eventually(Duration.ofSeconds(2), () -> refused(process), "new connections to be refused");
      assertThat(download.isDone()).as("the download, when the listener was closed").isFalse();

      Received got = download.get(30, TimeUnit.SECONDS);
      assertThat(got.complete(SMALL, small)).as("the download in progress: %s", got).isTrue();
      long downloadMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
      Exit exited = exit.get(30, TimeUnit.SECONDS);
      System.out.printf("download finished %d ms after SIGTERM, process exited after %d ms%n", downloadMs, exited.ms());
      assertThat(exited.status()).as("exit status; log:%n%s", process.log()).isZero();
      assertThat(exited.ms()).as("time to exit").isLessThan(15_000);
      assertThat(CacheContents.files(cache.resolve("tmp"))).as("files left in tmp/").isEmpty();
      assertThat(CacheContents.files(cache.resolve("blobs"))).as("the blob, verified and installed").hasSize(1);
      assertThat(process.log()).contains("logger=access event=request method=GET path=/v2/stop/blobs/blobs/" + small
          + " status=200 bytes=" + SMALL);
      assertThat(lastLine(process)).contains("event=mirror.stopped");
    }
  }

  @Test
  void aDownloadThatOutlastsTheGraceIsCutAtItAndTheProcessStillExitsZero(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    try (MirrorProcess process = startDripping(large, cache, work, "2s")) {
      Future<Received> download = downloadUnderWay(process, cache, large);
      Exit exit = terminate(process);
      System.out.printf("a download outlasting a 2 s grace: process exited %d ms after SIGTERM%n", exit.ms());
      assertThat(exit.status()).as("exit status; log:%n%s", process.log()).isZero();
      assertThat(exit.ms()).as("time to exit").isBetween(2_000L, 4_000L);

      Received got = download.get(10, TimeUnit.SECONDS);
      assertThat(got.error()).as("the download cut short: %s", got).isNotNull();
      assertThat(got.bytes()).isLessThan(LARGE);
      assertThat(CacheContents.files(cache.resolve("tmp"))).as("files left in tmp/").isEmpty();
      assertThat(CacheContents.files(cache.resolve("blobs"))).as("blobs installed").isEmpty();
      assertThat(process.log()).containsPattern("logger=access event=request method=GET path=/v2/stop/blobs/blobs/"
          + large + " status=200 bytes=\\d+ ms=\\d+ complete=false cache=miss upstream=local");
      assertThat(lastLine(process)).contains("event=mirror.stopped");
    }
  }

  /** A mirror process with this {@code shutdownGrace}, whose upstream drips {@code digest}. */
  private MirrorProcess startDripping(String digest, Path cache, Path work, String grace)
      throws IOException, InterruptedException {
    upstream.fault(matching("GET", ".*/blobs/" + digest), Fault.drip(DRIP), 1);
    return MirrorProcess.start(upstream.url(), cache, work, List.of(), "shutdownGrace: " + grace + "\n");
  }

  /**
   * A client's download of {@code digest}, returned once the mirror has started filling it: its
   * upstream request is out and its file made.
   */
  private Future<Received> downloadUnderWay(MirrorProcess process, Path cache, String digest) {
    Future<Received> download = threads.submit(() -> fetch(process, digest));
    eventually(Duration.ofSeconds(20), () -> upstream.arrived("GET", ".*/blobs/" + digest) == 1
        && !CacheContents.files(cache.resolve("tmp")).isEmpty(), "the fill to start");
    return download;
  }

  private Received fetch(MirrorProcess process, String digest) {
    try {
      return MirrorUnderTest.drain(http.send(HttpRequest.newBuilder(
          URI.create(process.url() + "/v2/stop/blobs/blobs/" + digest)).build(), HttpResponse.BodyHandlers.ofInputStream()));
    } catch (IOException e) {
      return new Received(0, 0, null, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static Exit terminate(MirrorProcess process) throws InterruptedException {
    long start = System.nanoTime();
    int status = process.terminate(Duration.ofSeconds(60));
    return new Exit(status, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
  }

  private static boolean refused(MirrorProcess process) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", Integer.parseInt(process.hostPort().split(":")[1])), 1_000);
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  private static String lastLine(MirrorProcess process) throws IOException {
    String[] lines = process.log().strip().split("\n");
    return lines[lines.length - 1];
  }
}
