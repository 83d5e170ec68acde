package io.registrymirror.it;

import io.registrymirror.testing.ImageSeeder.Image;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The load test's clients at work against one mirror: the clock, the pacing of misses, the
 * requests of each kind, and the tally of answers, each checked byte for byte.
 */
final class LoadRun {

  /** A blob in upstream: what a GET must hash to, and how long it is. */
  record Blob(String digest, long size) {
  }

  private final HttpClient[] http;
  private final AtomicBoolean stopped = new AtomicBoolean();
  private final AtomicInteger nextFresh = new AtomicInteger();
  private final AtomicLong errors = new AtomicLong();
  private final Queue<String> firstErrors = new ConcurrentLinkedQueue<>();
  private final Map<String, LongAdder> counts = new ConcurrentHashMap<>();
  private final List<Blob> all = new ArrayList<>();
  private volatile long startedAt;

  private final String mirrorUrl;
  private final String repo;
  private final List<Blob> hot;
  private final List<Blob> fresh;
  private final List<Image> images;
  private final Duration duration;
  private final int clients;
  private final Duration answerTimeout;

  /**
   * Clients of the mirror at {@code mirrorUrl} over {@code duration}: {@code hot} blobs are
   * cached before it starts, {@code fresh} ones are fetched as misses spread over the run, both
   * in {@code repo}; {@code images} are pulled by tag and digest.
   */
  LoadRun(HttpClient[] http, String mirrorUrl, String repo, List<Blob> hot, List<Blob> fresh, List<Image> images,
      Duration duration, int clients, Duration answerTimeout) {
    this.http = http;
    this.mirrorUrl = mirrorUrl;
    this.repo = repo;
    this.hot = hot;
    this.fresh = fresh;
    this.images = images;
    this.duration = duration;
    this.clients = clients;
    this.answerTimeout = answerTimeout;
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
        requests(), elapsedSeconds(), clients, errors(), claimed(), fresh.size(), new TreeMap<>(counts));
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
    double progress = (System.nanoTime() - startedAt) / (double) duration.toNanos();
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
    exchange(client, "GET blob", "/v2/" + repo + "/blobs/" + blob.digest(), null, true, what, (r, got) -> {
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
    exchange(client, "HEAD blob", "/v2/" + repo + "/blobs/" + blob.digest(), null, false, what, (r, got) -> {
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
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(mirrorUrl + path))
        .timeout(answerTimeout)
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
