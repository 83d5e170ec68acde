package io.registrymirror.proxy;

import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Reference;
import io.registrymirror.upstream.Target;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HexFormat;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pre-warms the cache: images asked for through the prefetch API are pulled in the background,
 * a few jobs at once, the others queued in order. Finished jobs are kept, for their status to be
 * read, until {@link #FINISHED_KEPT} newer ones have finished.
 */
public final class Prefetcher {

  private static final EventLog LOG = EventLog.of(Prefetcher.class);

  /** Jobs running at once: each fetches up to {@link PrefetchJob#BLOBS_AT_ONCE} blobs. */
  static final int JOBS_AT_ONCE = 2;
  /** Jobs waiting; beyond them a request is refused with 429 until some have run. */
  public static final int QUEUE_LIMIT = 100;
  public static final int FINISHED_KEPT = 100;
  /** When a refused request may come back: roughly the time a job of a common image takes. */
  public static final Duration RETRY_AFTER = Duration.ofSeconds(30);

  private final Context context;
  private final PrefetchJob.Services services;
  private final MirrorMetrics metrics;
  private final SecureRandom random = new SecureRandom();
  private final Map<String, PrefetchJob> jobs = new HashMap<>();
  private final Deque<PrefetchJob> queued = new ArrayDeque<>();
  private final Deque<PrefetchJob> finished = new ArrayDeque<>();
  private int running;
  private boolean closed;

  public Prefetcher(Vertx vertx, ManifestService manifests, ManifestFetcher fetcher, BlobService blobs,
      MirrorMetrics metrics) {
    // Jobs run on one event loop of their own, whichever server took the request.
    this.context = vertx.getOrCreateContext();
    this.services = new PrefetchJob.Services(manifests, fetcher, blobs);
    this.metrics = metrics;
    metrics.watchPrefetchJobs(this::queued, this::running);
  }

  /**
   * Queues a job for the image and starts it when fewer than {@link #JOBS_AT_ONCE} run.
   *
   * @param image the image as the user wrote it, shown in the job's status
   * @param platforms the platforms of an index to take; all of them when empty
   * @throws io.registrymirror.error.RegistryException TOOMANYREQUESTS when the queue is full
   */
  public synchronized PrefetchJob submit(String image, Target target, Reference reference, List<String> platforms) {
    if (closed || queued.size() >= QUEUE_LIMIT) {
      throw OciError.TOOMANYREQUESTS.exception(closed ? "the mirror is shutting down"
              : QUEUE_LIMIT + " prefetch jobs are waiting already; retry later")
          .withHeader("Retry-After", Long.toString(RETRY_AFTER.toSeconds()));
    }
    PrefetchJob job = new PrefetchJob(newId(), image, target, reference, platforms);
    jobs.put(job.id(), job);
    queued.add(job);
    LOG.info("prefetch.queued", "id", job.id(), "image", image, "target", target,
        "platforms", platforms.isEmpty() ? "all" : String.join(",", platforms));
    startNext();
    return job;
  }

  /** The job of that id, or null when there never was one or it was forgotten. */
  public synchronized PrefetchJob find(String id) {
    return jobs.get(id);
  }

  /** Starts no more jobs; the running ones end with the fetches the blob service stops. */
  public synchronized void close() {
    closed = true;
    queued.clear();
  }

  private synchronized int queued() {
    return queued.size();
  }

  private synchronized int running() {
    return running;
  }

  private synchronized void startNext() {
    while (!closed && running < JOBS_AT_ONCE && !queued.isEmpty()) {
      PrefetchJob job = queued.poll();
      running++;
      long start = System.nanoTime();
      context.runOnContext(v -> job.run(services).onComplete(r -> ended(job, start)));
    }
  }

  private synchronized void ended(PrefetchJob job, long start) {
    running--;
    finished.add(job);
    while (finished.size() > FINISHED_KEPT) {
      jobs.remove(finished.poll().id());
    }
    PrefetchJob.State state = job.state();
    metrics.prefetchFinished(state.label());
    JsonObject status = job.toJson();
    long ms = (System.nanoTime() - start) / 1_000_000;
    if (state == PrefetchJob.State.DONE) {
      LOG.info("prefetch.done", "id", job.id(), "image", job.image(), "ms", ms,
          "blobs", status.getJsonObject("blobs").getInteger("done"),
          "bytes", status.getJsonObject("bytes").getLong("done"));
    } else {
      LOG.warn("prefetch.failed", "id", job.id(), "image", job.image(), "ms", ms, "error", status.getString("error"));
    }
    startNext();
  }

  /** Unguessable, so that one user cannot read another's job by counting. */
  private String newId() {
    byte[] bytes = new byte[12];
    random.nextBytes(bytes);
    return HexFormat.of().formatHex(bytes);
  }
}
