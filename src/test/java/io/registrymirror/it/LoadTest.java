package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.internal.PlatformDependent;
import io.registrymirror.it.LoadRun.Blob;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.TestLimits;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Load: two hundred concurrent clients for a minute against the mirror in front of the reference
 * registry, mixing blob hits, blob misses (new blobs keep being asked for throughout), HEADs of
 * blobs and manifests, manifest pulls by digest and tag resolutions that keep revalidating. Every
 * answer must be right, and the mirror's memory at the end must be where it was in the middle.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class LoadTest extends MirrorTestBase {

  private static final Duration DURATION = Duration.ofSeconds(60);
  /** How long the clients may take to finish their last requests once the run is over. */
  private static final Duration FINISH = Duration.ofSeconds(120);
  private static final int CLIENTS = 200;
  /** Each java.net.http client has one selector thread: several share the work. */
  private static final int HTTP_CLIENTS = 8;
  private static final int SMALL_BLOBS = 400;
  private static final int LARGE_BLOBS = 12;
  /** Small blobs are 1 to 64 KiB, large ones 2 to 4 MiB. */
  private static final int SMALL_MIN = 1_024;
  private static final int SMALL_SPREAD = 63 * 1_024;
  private static final int LARGE_MIN = 2 << 20;
  private static final int LARGE_SPREAD = 2 << 20;
  private static final int IMAGE_LAYER_SIZE = 20_000;
  /** Connecting under load takes longer than the harness's usual client allows. */
  private static final Duration CLIENT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
  /** How many clients fetch the hot blobs before the clock starts. */
  private static final int WARM_UP_CLIENTS = 16;
  private static final int HOT_SMALL = 100;
  private static final int HOT_LARGE = 4;
  private static final int IMAGES = 8;
  private static final String REPO = "load/blobs";

  /**
   * How much the heap in use after a full collection may grow from the middle to the end. Both
   * samples are taken under the same load, so what is live in them is the mirror's state plus
   * about 200 requests in flight on each side; that in-flight part varies by a few MiB from one
   * moment to the next. A leak of even a few hundred bytes per request (tens of thousands of
   * requests go by between the samples) exceeds this.
   */
  private static final long HEAP_TOLERANCE = 16L << 20;
  /**
   * How much direct memory may grow from the middle to the end. Pooled allocators hold memory in
   * chunks of a few MiB per arena and keep them once the load has needed them; one or two more
   * chunks in the second half is noise, a leaked buffer per request is not.
   */
  private static final long DIRECT_TOLERANCE = 16L << 20;

  /** Blobs fetched once before the clock starts, so that hits exist from the first second. */
  private static List<Blob> hot;
  /** Blobs nobody has asked for yet: each becomes a miss when its time comes. */
  private static List<Blob> fresh;
  private static List<Image> images;

  @Override
  protected String upstreamYaml() {
    // Tags older than a second are revalidated upstream: tag requests keep causing upstream HEADs.
    return "tagTtl: 1s";
  }

  @BeforeAll
  static void seed() throws Exception {
    ImageSeeder seeder = new ImageSeeder(registry.url(), 3);
    ExecutorService pushers = Executors.newFixedThreadPool(8);
    try {
      List<Future<Blob>> pushed = new ArrayList<>();
      for (int i = 0; i < SMALL_BLOBS + LARGE_BLOBS; i++) {
        int index = i;
        pushed.add(pushers.submit(() -> {
          SplittableRandom random = new SplittableRandom(1_000 + index);
          int size = index < SMALL_BLOBS ? SMALL_MIN + random.nextInt(SMALL_SPREAD)
              : LARGE_MIN + random.nextInt(LARGE_SPREAD);
          byte[] data = new byte[size];
          random.nextBytes(data);
          return new Blob(seeder.pushBlob(REPO, data), size);
        }));
      }
      List<Blob> small = new ArrayList<>();
      List<Blob> large = new ArrayList<>();
      for (int i = 0; i < pushed.size(); i++) {
        (i < SMALL_BLOBS ? small : large).add(pushed.get(i).get());
      }
      hot = new ArrayList<>(small.subList(0, HOT_SMALL));
      hot.addAll(large.subList(0, HOT_LARGE));
      List<Blob> rest = new ArrayList<>(small.subList(HOT_SMALL, small.size()));
      rest.addAll(large.subList(HOT_LARGE, large.size()));
      // Large and small misses spread over the whole run, in an order fixed by the seed.
      Collections.shuffle(rest, new Random(5));
      fresh = List.copyOf(rest);
    } finally {
      pushers.shutdownNow();
    }
    images = new ArrayList<>();
    for (int i = 0; i < IMAGES; i++) {
      images.add(seeder.pushImage("load/app" + i, "v" + i, 1, IMAGE_LAYER_SIZE, i % 2 == 0 ? "docker" : "oci"));
    }
  }

  @Test
  void twoHundredClientsForAMinuteGetOnlyCorrectAnswersAndMemoryStaysFlat() throws Exception {
    HttpClient[] http = new HttpClient[HTTP_CLIENTS];
    for (int i = 0; i < http.length; i++) {
      http[i] = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(CLIENT_CONNECT_TIMEOUT).build();
    }
    warmUp(newRun(http), http[0]);
    upstream.clear();
    LoadRun run = newRun(http);

    ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
    ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor();
    List<Sample> samples = Collections.synchronizedList(new ArrayList<>());
    try {
      run.start();
      for (int i = 0; i < CLIENTS; i++) {
        SplittableRandom random = new SplittableRandom(20_000 + i);
        HttpClient client = http[i % HTTP_CLIENTS];
        clients.submit(() -> run.client(client, random));
      }
      // Samples under full load: at a quarter (for the log), the middle and the end; the last
      // one stops the clients once it is taken.
      long millis = DURATION.toMillis();
      for (int quarter = 1; quarter <= 4; quarter++) {
        boolean last = quarter == 4;
        sampler.schedule(() -> {
          try {
            samples.add(new Sample(run.elapsedSeconds(), run.requests(), upstreamTraffic(), Memory.measure()));
          } finally {
            if (last) {
              run.stop();
            }
          }
        }, millis * quarter / 4, TimeUnit.MILLISECONDS);
      }
      clients.shutdown();
      assertThat(clients.awaitTermination(DURATION.plus(FINISH).toSeconds(), TimeUnit.SECONDS))
          .as("clients finished").isTrue();
    } finally {
      clients.shutdownNow();
      sampler.shutdownNow();
    }

    run.report();
    samples.forEach(s -> System.out.println("sample " + s));
    assertThat(run.errors()).as("errors; the first ones: %s", run.firstErrors()).isZero();
    assertThat(run.requests()).isPositive();
    assertThat(samples).hasSize(4);

    // Misses and revalidations kept happening through the second half, not just at the start.
    Sample middle = samples.get(1);
    Sample end = samples.get(3);
    assertThat(run.claimed()).as("fresh blobs fetched").isGreaterThan(fresh.size() * 9 / 10);
    assertThat(end.upstream().get("GET blob") - middle.upstream().get("GET blob"))
        .as("blob fetches upstream in the second half").isPositive();
    assertThat(end.upstream().get("HEAD manifest") - middle.upstream().get("HEAD manifest"))
        .as("tag revalidations upstream in the second half").isPositive();

    assertThat(end.memory().heap())
        .as("heap in use after a full GC at the end (%s) vs the middle (%s)", end.memory(), middle.memory())
        .isLessThanOrEqualTo(middle.memory().heap() + HEAP_TOLERANCE);
    assertThat(end.memory().direct())
        .as("direct memory in use at the end (%s) vs the middle (%s)", end.memory(), middle.memory())
        .isLessThanOrEqualTo(middle.memory().direct() + DIRECT_TOLERANCE);
  }

  private LoadRun newRun(HttpClient[] http) {
    return new LoadRun(http, mirror.url(), REPO, hot, fresh, images, DURATION, CLIENTS, TestLimits.ANSWER_TIMEOUT);
  }

  /** Every hot blob once, so that the run's hits are hits from its first second. */
  private void warmUp(LoadRun run, HttpClient client) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(WARM_UP_CLIENTS);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (Blob b : hot) {
        done.add(pool.submit(() -> run.getBlob(client, b)));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(run.errors()).as("errors while warming up: %s", run.firstErrors()).isZero();
  }

  /**
   * Upstream requests so far by method and kind. The forwarder records every exchange in memory,
   * in this JVM: it is emptied at each sample so its records do not count as the mirror's memory.
   */
  private Map<String, Long> upstreamTraffic() {
    for (var s : upstream.seen()) {
      String kind = s.uri().contains("/blobs/") ? "blob" : s.uri().contains("/manifests/") ? "manifest" : "other";
      upstreamTotals.merge(s.method() + " " + kind, 1L, Long::sum);
    }
    upstream.clear();
    Map<String, Long> counts = new TreeMap<>(upstreamTotals);
    counts.putIfAbsent("GET blob", 0L);
    counts.putIfAbsent("HEAD manifest", 0L);
    return counts;
  }

  /** Upstream requests since the run started; only the sampling thread touches it. */
  private final Map<String, Long> upstreamTotals = new TreeMap<>();

  /** The mirror's memory: heap in use after a full collection, and direct memory in use. */
  private record Memory(long heap, long direct, long nettyPooled) {

    static Memory measure() {
      // Twice: buffers whose cleaners the first collection queues are freed by the second.
      System.gc();
      System.gc();
      long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      // NIO's direct buffers (Netty's too when it allocates with cleaners), plus what Netty
      // allocates without cleaners, which only its own counter sees (-1 when it does not).
      long direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
          .filter(p -> p.getName().equals("direct")).mapToLong(BufferPoolMXBean::getMemoryUsed).sum()
          + Math.max(0, PlatformDependent.usedDirectMemory());
      return new Memory(heap, direct, PooledByteBufAllocator.DEFAULT.metric().usedDirectMemory());
    }

    @Override
    public String toString() {
      return "heap " + (heap >> 20) + " MiB, direct " + (direct >> 20) + " MiB (Netty pooled "
          + (nettyPooled >> 20) + " MiB)";
    }
  }

  /** What a sample saw: when, how many requests so far, upstream traffic so far, memory. */
  private record Sample(long second, long requests, Map<String, Long> upstream, Memory memory) {
  }
}
