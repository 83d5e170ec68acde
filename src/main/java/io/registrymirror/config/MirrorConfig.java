package io.registrymirror.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The whole configuration of a mirror, as read from the YAML file and the environment.
 *
 * @param host address the listener binds
 * @param port port the listener binds (0 picks a free one, for tests)
 * @param cacheDir root of the on-disk cache
 * @param upstreams the registries mirrored, by the name clients know
 */
public record MirrorConfig(String host, int port, Path cacheDir, Map<String, UpstreamConfig> upstreams) {

  public MirrorConfig {
    upstreams = Map.copyOf(upstreams);
  }

  /** What {@code java -jar} with no arguments runs: Docker Hub into {@code ./cache} on port 5000. */
  public static MirrorConfig defaults() {
    UpstreamConfig hub = UpstreamConfig.dockerHub();
    return new MirrorConfig("0.0.0.0", 5000, Path.of("cache"), Map.of(hub.name(), hub));
  }

  public UpstreamConfig defaultUpstream() {
    List<UpstreamConfig> defaults =
        upstreams.values().stream().filter(UpstreamConfig::isDefault).toList();
    return defaults.isEmpty() ? null : defaults.get(0);
  }

  public MirrorConfig withListen(String host, int port) {
    return new MirrorConfig(host, port, cacheDir, upstreams);
  }

  public MirrorConfig withCacheDir(Path dir) {
    return new MirrorConfig(host, port, dir, upstreams);
  }
}
