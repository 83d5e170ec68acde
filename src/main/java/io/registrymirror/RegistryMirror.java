package io.registrymirror;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.api.ConnectionGuard;
import io.registrymirror.api.RegistryApi;
import io.registrymirror.api.RegistryVerticle;
import io.registrymirror.cluster.ClusterVertx;
import io.registrymirror.cluster.HazelcastPeers;
import io.registrymirror.cluster.Peers;
import io.registrymirror.config.ConfigException;
import io.registrymirror.config.MirrorConfig;
import io.registrymirror.config.TlsConfig;
import io.registrymirror.log.EventLog;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MeterRegistries;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.proxy.BlobService;
import io.registrymirror.proxy.CacheAdmin;
import io.registrymirror.proxy.CacheHealth;
import io.registrymirror.proxy.ManifestFetcher;
import io.registrymirror.proxy.ManifestService;
import io.registrymirror.proxy.MoveWarmer;
import io.registrymirror.proxy.Prefetcher;
import io.registrymirror.proxy.TagRetention;
import io.registrymirror.store.BlobStore;
import io.registrymirror.store.CacheIndex;
import io.registrymirror.store.CacheLayout;
import io.registrymirror.store.CacheWrites;
import io.registrymirror.store.ManifestStore;
import io.registrymirror.store.ScrubSchedule;
import io.registrymirror.tags.TagContent;
import io.registrymirror.tags.TagEvents;
import io.registrymirror.tags.TagRefresher;
import io.registrymirror.tags.TagResolver;
import io.registrymirror.tags.TagStore;
import io.registrymirror.tier.S3Tier;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.UpstreamClient;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.PemTrustOptions;
import java.net.BindException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A running mirror: its stores, upstream clients and HTTP servers, wired from a configuration. */
public final class RegistryMirror {

  private static final EventLog LOG = EventLog.of(RegistryMirror.class);

  /** How often the cache's free space is read for its gauge. */
  private static final Duration DISK_CHECK = Duration.ofSeconds(15);

  /** How long a request may wait for memory for a whole body before it gets 503 and Retry-After. */
  private static final Duration BODY_WAIT = Duration.ofSeconds(2);

  /** How long a stop waits for the writes to the object storage tier under way. */
  private static final Duration TIER_WRITES = Duration.ofSeconds(5);

  private final Vertx vertx;
  private final RegistryApi api;
  private final List<RegistryVerticle> servers;
  private final List<HttpClient> http;
  private final List<UpstreamClient> clients;
  private final BlobService blobs;
  private final Prefetcher prefetcher;
  private final TagRefresher refresher;
  private final ScrubSchedule scrub;
  private final long diskTimer;
  private final String deployment;
  private final int port;
  private final Future<Void> indexed;
  /** The replicas this one serves with; null when it runs alone. */
  private final HazelcastPeers cluster;
  /** The object storage tier; null without one. */
  private final S3Tier tier;

  private RegistryMirror(Vertx vertx, RegistryApi api, List<RegistryVerticle> servers, List<HttpClient> http,
      List<UpstreamClient> clients, BlobService blobs, Prefetcher prefetcher, TagRefresher refresher,
      ScrubSchedule scrub, long diskTimer, String deployment, int port, Future<Void> indexed,
      HazelcastPeers cluster, S3Tier tier) {
    this.cluster = cluster;
    this.tier = tier;
    this.vertx = vertx;
    this.api = api;
    this.servers = servers;
    this.http = http;
    this.clients = clients;
    this.blobs = blobs;
    this.prefetcher = prefetcher;
    this.refresher = refresher;
    this.scrub = scrub;
    this.diskTimer = diskTimer;
    this.deployment = deployment;
    this.port = port;
    this.indexed = indexed;
  }

  /** Opens the cache and starts one server per event loop on the configured address. */
  public static Future<RegistryMirror> start(Vertx vertx, MirrorConfig config) {
    return start(vertx, config, MeterRegistries.prometheusRegistry());
  }

  /**
   * As {@link #start(Vertx, MirrorConfig)}, with the meters in {@code prometheus}: the one Vert.x
   * reports to, when it was built with metrics.
   */
  public static Future<RegistryMirror> start(Vertx vertx, MirrorConfig config, PrometheusMeterRegistry prometheus) {
    if (config.cluster() == null) {
      return start(vertx, config, prometheus, Peers.ALONE, null);
    }
    if (!vertx.isClustered()) {
      return Future.failedFuture(new IllegalStateException("a cluster is configured: Vert.x must be clustered"));
    }
    String advertise = ClusterVertx.advertise(config);
    return HazelcastPeers.of(vertx, advertise, config.cluster().keepCopies())
        .compose(peers -> start(vertx, config, prometheus, peers, peers));
  }

  /** @param cluster the replicas this one announces itself to once it listens; null when alone */
  private static Future<RegistryMirror> start(Vertx vertx, MirrorConfig config, PrometheusMeterRegistry prometheus,
      Peers peers, HazelcastPeers cluster) {
    MirrorMetrics metrics = new MirrorMetrics(prometheus);
    if (cluster != null) {
      metrics.watchReplicas(() -> cluster.replicas().size());
    }

    // Two pools, so that long blob transfers never make manifest and tag requests queue.
    HttpClientOptions options = new HttpClientOptions().setDecompressionSupported(false).setKeepAlive(true);
    HttpClient metadata = vertx.createHttpClient(options, new PoolOptions().setHttp1MaxSize(16));
    HttpClient content = vertx.createHttpClient(new HttpClientOptions(options).setMaxChunkSize(256 * 1024),
        new PoolOptions().setHttp1MaxSize(64));
    BodyBudget budget = new BodyBudget(vertx, BodyBudget.defaultLimit(), BODY_WAIT);
    metrics.watchBodyMemory(budget::used, budget.limit());
    List<UpstreamClient> clients = config.upstreams().values().stream()
        .map(u -> new UpstreamClient(vertx, metadata, content, u, metrics, budget)).toList();
    clients.forEach(c -> metrics.watchUpstream(c.name(), c::rateLimitRemaining));
    Upstreams upstreams = new Upstreams(clients);

    CacheLayout layout = new CacheLayout(config.cacheDir());
    CacheWrites writes = new CacheWrites(metrics);
    CacheIndex index = new CacheIndex(vertx, layout, metrics, config.cache().maxSize());
    BlobStore blobStore = new BlobStore(vertx, layout, index);
    metrics.watchFillMemory(blobStore::fillMemoryUsed);
    metrics.watchCacheDisk(blobStore::diskFree, blobStore::diskSize);
    ManifestStore manifestStore = new ManifestStore(vertx, layout, budget, index);
    // What tags serve needs keeping only from a bound.
    TagRetention retention = config.cache().bounded() ? new TagRetention(vertx, manifestStore, index) : null;
    TagStore tagStore = new TagStore(vertx, layout, writes, config.tags().maxTracked(),
        retention == null ? TagContent.NONE : retention);
    S3Tier tier = config.s3() == null ? null : S3Tier.create(vertx, config.s3(), budget, metrics);
    HttpClient replicas = cluster == null ? null : peerPool(vertx, options, config.tls());
    PeerClient peerClient = cluster == null ? null
        : new PeerClient(vertx, replicas, config.tls() != null, peers::secret, metrics, budget);
    BlobService blobs = new BlobService(vertx, blobStore, writes, metrics, peers, peerClient, tier);
    ManifestFetcher fetcher = new ManifestFetcher(manifestStore, writes, tier, peers, peerClient);
    TagEvents tagEvents = new TagEvents(vertx, metadata, config.tags(), metrics,
        new MoveWarmer(upstreams, fetcher, blobs));
    TagResolver resolver = new TagResolver(vertx, tagStore, fetcher, config.tags(), tagEvents, peers, upstreams);
    ManifestService manifests = new ManifestService(manifestStore, fetcher, resolver);
    TagRefresher refresher = new TagRefresher(vertx, tagStore, resolver, upstreams, config.tags(), metrics);
    metrics.watchTrackedTags(() -> tagStore.all().size());
    Prefetcher prefetcher = new Prefetcher(vertx, manifests, fetcher, blobs, metrics);
    CacheHealth health = new CacheHealth(vertx, layout);
    RegistryApi api = new RegistryApi(vertx, upstreams, blobs, manifests, metrics, prometheus, health,
        config.htpasswd(), config.limits(), tagStore, prefetcher,
        new CacheAdmin(index, blobStore, manifestStore, tagStore), config.adminToken(), peers);
    ConnectionGuard guard = new ConnectionGuard(config.limits());

    int instances = Math.max(1, Runtime.getRuntime().availableProcessors());
    // One deployment of several instances: Vert.x spreads connections over their event loops,
    // and with port 0 they all share the one free port the first of them binds.
    List<RegistryVerticle> servers = new ArrayList<>();
    Promise<Void> indexed = Promise.promise();
    return blobStore.open()
        .compose(v -> manifestStore.open())
        .recover(err -> Future.failedFuture(new ConfigException(
            "cache.dir: " + layout.root() + " cannot be used: " + reason(err), err)))
        // A cache that cannot take files still serves what it holds, and everything else past
        // it; readiness says so until a file can be written.
        .compose(v -> health.writable().recover(err -> {
          LOG.warn("cache.unwritable", "dir", layout.root(), "error", reason(err));
          return Future.succeededFuture();
        }))
        .compose(v -> vertx.deployVerticle(() -> {
          RegistryVerticle server = new RegistryVerticle(api, guard, config.host(), config.port(), config.tls());
          synchronized (servers) {
            servers.add(server);
          }
          return server;
        }, new DeploymentOptions().setInstances(instances)).recover(err -> Future.failedFuture(isBind(err)
            ? new ConfigException("listen: cannot listen on " + config.host() + ":" + config.port()
                + ": " + reason(err), err)
            : err)))
        // Listening: from now on, this replica owns its share of the blobs.
        .compose(id -> cluster == null ? Future.succeededFuture(id) : cluster.announce().map(id))
        .map(id -> {
          int port = servers.get(0).actualPort();
          LOG.info("mirror.started", "listen", config.host() + ":" + port,
              "scheme", config.tls() == null ? "http" : "https",
              "clients", config.htpasswd() == null ? "anonymous" : "htpasswd", "cache", layout.root(),
              "upstreams", String.join(",", config.upstreams().keySet()), "servers", instances,
              "s3", tier == null ? "none" : tier.bucket(), "cluster", cluster == null ? "none" : cluster.self());
          // The mirror serves while the index and the tags are read (a cache of 100,000 tags
          // takes seconds); the bound applies once both are complete and what tags keep is
          // known, so that nothing kept is evicted in between.
          Future<Void> tags = tagStore.open();
          // A replica that joins learns the tags the cluster tracks, and their history.
          tags.compose(v -> resolver.catchUp())
              .onFailure(e -> LOG.warn("tags.catchup.failed", "error", e.toString()));
          refresher.start();
          blobStore.loadIndex()
              .compose(v -> manifestStore.loadIndex())
              .compose(v -> tags)
              .compose(v -> retention == null ? Future.<Void>succeededFuture() : retention.start(tagStore.all()))
              .onFailure(e -> LOG.warn("cache.index.failed", "error", e.toString()))
              .onComplete(r -> {
                index.bound();
                health.indexDone();
                indexed.complete();
              });
          ScrubSchedule scrub = new ScrubSchedule(vertx, layout, index, metrics, config.cache().scrubInterval());
          scrub.start();
          long diskTimer = vertx.setPeriodic(0, DISK_CHECK.toMillis(), t -> blobStore.checkDisk()
              .onFailure(e -> LOG.warn("cache.disk.unreadable", "error", e.toString())));
          return new RegistryMirror(vertx, api, List.copyOf(servers), cluster == null ? List.of(metadata, content) : List.of(metadata, content, replicas), clients, blobs,
              prefetcher, refresher, scrub, diskTimer, id, port, indexed.future(), cluster, tier);
        });
  }

  /**
   * The pool for requests to the other replicas, in their listeners' scheme. Behind TLS, every
   * replica presents the certificate they all share (one Secret) at an address of its own (a pod
   * IP) that no certificate names: a replica must present that certificate, and its name is not
   * checked against the address.
   */
  private static HttpClient peerPool(Vertx vertx, HttpClientOptions base, TlsConfig tls) {
    HttpClientOptions options = new HttpClientOptions(base).setMaxChunkSize(256 * 1024);
    if (tls != null) {
      options.setSsl(true).setVerifyHost(false)
          .setTrustOptions(new PemTrustOptions().addCertPath(tls.cert().toString()));
    }
    return vertx.createHttpClient(options, new PoolOptions().setHttp1MaxSize(64));
  }

  /** What went wrong, in words: a file-system error's own message is often just its path. */
  private static String reason(Throwable err) {
    if (err instanceof FileSystemException e) {
      String what = e.getReason() != null ? e.getReason()
          : e instanceof AccessDeniedException ? "permission denied"
          : e instanceof NoSuchFileException ? "no such file or directory"
          : e instanceof FileAlreadyExistsException ? "exists and is not a directory"
          : e.getClass().getSimpleName();
      return what + (e.getFile() == null ? "" : " (" + e.getFile() + ")");
    }
    return err.getMessage() != null ? err.getMessage() : err.getClass().getSimpleName();
  }

  /** A failure to bind the listening socket: the address is taken, or not this host's. */
  private static boolean isBind(Throwable err) {
    for (Throwable t = err; t != null; t = t.getCause()) {
      String message = String.valueOf(t.getMessage()).toLowerCase(Locale.ROOT);
      if (t instanceof BindException || message.contains("already in use")
          || message.contains("assign requested address")) {
        return true;
      }
    }
    return false;
  }

  public int port() {
    return port;
  }

  /** Completes once the cache's index is read: from then on {@code /readyz} says ready. */
  public Future<Void> indexed() {
    return indexed;
  }

  /** Stops at once: answers in progress are cut. */
  public Future<Void> close() {
    return close(Duration.ZERO);
  }

  /**
   * Stops the timers first (tag refresh, password-file and htpasswd re-reads, disk check, scrub),
   * then takes no more connections and lets the answers in progress finish for up to {@code grace}
   * (cutting those that take longer), then stops the fetches still running (waiting until their
   * files are cleaned up), then the HTTP clients to the upstreams; the Vertx instance stays the
   * caller's.
   */
  public Future<Void> close(Duration grace) {
    long start = System.nanoTime();
    LOG.info("mirror.stopping", "port", port, "graceMs", grace.toMillis());
    refresher.stop();
    prefetcher.close();
    clients.forEach(UpstreamClient::close);
    api.close();
    vertx.cancelTimer(diskTimer);
    Future<Void> scrubStopped = scrub.close();
    // First of all, the other replicas stop sending requests here.
    Future<Void> left = cluster == null ? Future.succeededFuture()
        : cluster.leave().recover(err -> {
          LOG.warn("cluster.leave.failed", "error", err.toString());
          return Future.succeededFuture();
        });
    return left.compose(v -> Future.all(servers.stream().map(server -> server.shutdown(grace)).toList()))
        .compose(v -> vertx.undeploy(deployment))
        .compose(v -> blobs.close())
        .compose(v -> tier == null ? Future.<Void>succeededFuture() : tier.close(TIER_WRITES))
        .compose(v -> scrubStopped)
        .compose(v -> Future.all(http.stream().map(HttpClient::close).toList()).<Void>mapEmpty())
        .onSuccess(v -> LOG.info("mirror.stopped", "port", port,
            "ms", Duration.ofNanos(System.nanoTime() - start).toMillis()));
  }
}
