package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.internal.PlatformDependent;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.TestLimits;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
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

  /** A blob in upstream: what a GET must hash to, and how long it is. */
  private record Blob(String digest, long size) {
  }

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
    warmUp(new Run(http), http[0]);
    upstream.clear();
    Run run = new Run(http);

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

  /** Every hot blob once, so that the run's hits are hits from its first second. */
  private void warmUp(Run run, HttpClient client) throws Exception {
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

  /** The run's shared state: the clock, the pacing of misses, and the tally of answers. */
  private final class Run {

    private final HttpClient[] http;
    private final AtomicBoolean stopped = new AtomicBoolean();
    private final AtomicInteger nextFresh = new AtomicInteger();
    private final AtomicLong errors = new AtomicLong();
    private final Queue<String> firstErrors = new ConcurrentLinkedQueue<>();
    private final Map<String, LongAdder> counts = new ConcurrentHashMap<>();
    private final List<Blob> all = new ArrayList<>();
    private volatile long startedAt;

    Run(HttpClient[] http) {
      this.http = http;
      all.addAll(hot);
      all.addAll(fresh);
    }

    void start() {
      startedAt = System.nanoTime();
    }

    void stop() {
      stopped.set(true);
    }

    long elapsedSeconds() {
      return (System.nanoTime() - startedAt) / 1_000_000_000L;
    }

    long requests() {
      return counts.values().stream().mapToLong(LongAdder::sum).sum();
    }

    long errors() {
      return errors.get();
    }

    List<String> firstErrors() {
      return List.copyOf(firstErrors);
    }

    int claimed() {
      return Math.min(nextFresh.get(), fresh.size());
    }

    void report() {
      System.out.printf("%d requests in %d s by %d clients, %d errors, %d of %d fresh blobs fetched: %s%n",
          requests(), elapsedSeconds(), CLIENTS, errors(), claimed(), fresh.size(), new TreeMap<>(counts));
    }

    /** One client: requests back to back, each kind as often as its share, until stopped. */
    void client(HttpClient client, SplittableRandom random) {
      while (!stopped.get()) {
        int dice = random.nextInt(100);
        if (dice < 35) {
          getBlob(client, cachedBlob(random));
        } else if (dice < 45) {
          Blob miss = claimFresh();
          getBlob(client, miss != null ? miss : cachedBlob(random));
        } else if (dice < 50) {
          // The newest miss: probably still being fetched, so this joins the fill.
          int newest = claimed() - 1;
          getBlob(client, newest >= 0 ? fresh.get(newest) : cachedBlob(random));
        } else if (dice < 65) {
          // Any blob: one nobody fetched yet makes the mirror ask upstream with a HEAD.
          headBlob(client, all.get(random.nextInt(all.size())));
        } else if (dice < 75) {
          Image image = images.get(random.nextInt(images.size()));
          headManifest(client, image, random.nextBoolean() ? image.tag() : image.manifestDigest());
        } else if (dice < 85) {
          Image image = images.get(random.nextInt(images.size()));
          getManifest(client, image, image.manifestDigest());
        } else {
          Image image = images.get(random.nextInt(images.size()));
          getManifest(client, image, image.tag());
        }
      }
    }

    /** A blob fetched before: a hot one or a miss already claimed (possibly still arriving). */
    private Blob cachedBlob(SplittableRandom random) {
      int n = hot.size() + claimed();
      int i = random.nextInt(n);
      return i < hot.size() ? hot.get(i) : fresh.get(i - hot.size());
    }

    /** The next fresh blob if its time has come: misses are spread evenly over the run. */
    private Blob claimFresh() {
      double progress = (System.nanoTime() - startedAt) / (double) DURATION.toNanos();
      int due = (int) Math.min(fresh.size(), Math.ceil(progress * fresh.size()));
      while (true) {
        int next = nextFresh.get();
        if (next >= due) {
          return null;
        }
        if (nextFresh.compareAndSet(next, next + 1)) {
          return fresh.get(next);
        }
      }
    }

    void getBlob(HttpClient client, Blob blob) {
      String what = "GET blob " + blob.digest();
      exchange(client, "GET blob", "/v2/" + REPO + "/blobs/" + blob.digest(), null, true, what, (r, got) -> {
        if (r.statusCode() != 200) {
          return "status " + r.statusCode();
        }
        if (got.bytes() != blob.size() || !got.digest().equals(blob.digest())) {
          return got.bytes() + " bytes hashing to " + got.digest();
        }
        return null;
      });
    }

    void headBlob(HttpClient client, Blob blob) {
      String what = "HEAD blob " + blob.digest();
      exchange(client, "HEAD blob", "/v2/" + REPO + "/blobs/" + blob.digest(), null, false, what, (r, got) -> {
        if (r.statusCode() != 200) {
          return "status " + r.statusCode();
        }
        if (r.headers().firstValueAsLong("Content-Length").orElse(-1) != blob.size()
            || !blob.digest().equals(r.headers().firstValue("Docker-Content-Digest").orElse(null))) {
          return "headers " + r.headers().map();
        }
        return null;
      });
    }

    void headManifest(HttpClient client, Image image, String ref) {
      String what = "HEAD manifest " + image.repo() + ":" + ref;
      exchange(client, "HEAD manifest", "/v2/" + image.repo() + "/manifests/" + ref, image.mediaType(), false, what,
          (r, got) -> {
            if (r.statusCode() != 200) {
              return "status " + r.statusCode();
            }
            if (!image.manifestDigest().equals(r.headers().firstValue("Docker-Content-Digest").orElse(null))
                || r.headers().firstValueAsLong("Content-Length").orElse(-1) != image.manifest().length) {
              return "headers " + r.headers().map();
            }
            return null;
          });
    }

    void getManifest(HttpClient client, Image image, String ref) {
      String kind = ref.equals(image.tag()) ? "GET manifest by tag" : "GET manifest by digest";
      String what = kind + " " + image.repo() + ":" + ref;
      exchange(client, kind, "/v2/" + image.repo() + "/manifests/" + ref, image.mediaType(), true, what, (r, got) -> {
        if (r.statusCode() != 200) {
          return "status " + r.statusCode();
        }
        if (!got.digest().equals(image.manifestDigest())
            || !image.mediaType().equals(r.headers().firstValue("Content-Type").orElse(null))) {
          return "a manifest hashing to " + got.digest() + " of type " + r.headers().firstValue("Content-Type");
        }
        return null;
      });
    }

    private void exchange(HttpClient client, String kind, String path, String accept, boolean get, String what,
        Check check) {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(mirror.url() + path))
          .timeout(TestLimits.ANSWER_TIMEOUT)
          .method(get ? "GET" : "HEAD", HttpRequest.BodyPublishers.noBody());
      if (accept != null) {
        b.header("Accept", accept);
      }
      String problem;
      try {
        HttpResponse<Received> r = client.send(b.build(), info -> new Hashing());
        problem = check.problem(r, r.body());
      } catch (Exception e) {
        problem = e.toString();
      }
      counts.computeIfAbsent(kind, k -> new LongAdder()).increment();
      if (problem != null) {
        errors.incrementAndGet();
        if (firstErrors.size() < 20) {
          firstErrors.add(what + ": " + problem);
        }
      }
    }
  }

  /** Checks one answer; returns what is wrong with it, or null. */
  private interface Check {
    String problem(HttpResponse<Received> response, Received body);
  }

  /** A body as a client saw it: its length and digest. */
  private record Received(long bytes, String digest) {
  }

  /** Hashes a body as it arrives and keeps none of it: two hundred clients, constant memory. */
  private static final class Hashing implements HttpResponse.BodySubscriber<Received> {

    private final MessageDigest sha;
    private final CompletableFuture<Received> result = new CompletableFuture<>();
    private long bytes;

    Hashing() {
      try {
        sha = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public CompletionStage<Received> getBody() {
      return result;
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
      subscription.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(List<ByteBuffer> items) {
      for (ByteBuffer item : items) {
        bytes += item.remaining();
        sha.update(item);
      }
    }

    @Override
    public void onError(Throwable error) {
      result.completeExceptionally(error);
    }

    @Override
    public void onComplete() {
      result.complete(new Received(bytes, "sha256:" + HexFormat.of().formatHex(sha.digest())));
    }
  }
}
