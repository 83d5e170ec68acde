package io.registrymirror.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The whole configuration of a mirror, as read from the YAML file and the environment.
 *
 * @param host address the listener binds
 * @param port port the listener binds (0 picks a free one, for tests)
 * @param cache where the cache lives, how large it may grow, how often it is scrubbed
 * @param upstreams the registries mirrored, by the name clients know
 * @param tls the listener's certificate and key; null to listen with plain http
 * @param htpasswd the users allowed to pull; null to let anyone pull
 * @param tags how tags are tracked and refreshed
 * @param limits what one client may hold of the listener
 * @param adminToken the Bearer token the prefetch and admin endpoints require; null to allow them
 *     from loopback only
 * @param log what is logged, and in which format
 * @param shutdownGrace how long answers in progress may take to finish once the mirror is told to
 *     stop; past it they are cut
 * @param cluster how this replica finds the others; null when it runs alone
 * @param s3 the shared object storage tier; null for none
 */
public record MirrorConfig(String host, int port, CacheConfig cache, Map<String, UpstreamConfig> upstreams,
    TlsConfig tls, Htpasswd htpasswd, TagsConfig tags, LimitsConfig limits, String adminToken, LogConfig log,
    Duration shutdownGrace, ClusterConfig cluster, S3Config s3) {

  /** Shorter than the 30 s Kubernetes waits after SIGTERM before it kills a pod. */
  public static final Duration DEFAULT_SHUTDOWN_GRACE = Duration.ofSeconds(20);

  public MirrorConfig {
    upstreams = Map.copyOf(upstreams);
  }

  /** What {@code java -jar} with no arguments runs: Docker Hub into {@code ./cache} on port 5000. */
  public static MirrorConfig defaults() {
    UpstreamConfig hub = UpstreamConfig.dockerHub();
    return new MirrorConfig("0.0.0.0", 5000, CacheConfig.defaults(), Map.of(hub.name(), hub), null, null,
        TagsConfig.defaults(), LimitsConfig.defaults(), null, LogConfig.defaults(), DEFAULT_SHUTDOWN_GRACE, null, null);
  }

  public UpstreamConfig defaultUpstream() {
    List<UpstreamConfig> defaults =
        upstreams.values().stream().filter(UpstreamConfig::isDefault).toList();
    return defaults.isEmpty() ? null : defaults.get(0);
  }

  public MirrorConfig withListen(String host, int port) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  /** The cache's root directory. */
  public Path cacheDir() {
    return cache.dir();
  }

  public MirrorConfig withCacheDir(Path dir) {
    return withCache(cache.withDir(dir));
  }

  public MirrorConfig withCache(CacheConfig cache) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withAdminToken(String adminToken) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withUpstreams(Map<String, UpstreamConfig> upstreams) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withTls(TlsConfig tls) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withTags(TagsConfig tags) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withHtpasswd(Htpasswd htpasswd) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withLimits(LimitsConfig limits) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withLog(LogConfig log) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withShutdownGrace(Duration shutdownGrace) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withCluster(ClusterConfig cluster) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace, cluster, s3);
  }

  public MirrorConfig withS3(S3Config s3) {
    return new MirrorConfig(host, port, cache, upstreams, tls, htpasswd, tags, limits, adminToken, log, shutdownGrace,
        cluster, s3);
  }
}
