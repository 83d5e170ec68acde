package io.registrymirror.config;

import java.nio.file.Path;
import java.time.Duration;

/**
 * The cache on disk.
 *
 * @param dir its root directory
 * @param maxSize bytes of blobs and manifests it may hold; 0 for no bound
 * @param scrubInterval how often every cached file is hashed again in the background; zero for
 *     never
 */
public record CacheConfig(Path dir, long maxSize, Duration scrubInterval) {

  public static CacheConfig defaults() {
    return new CacheConfig(Path.of("cache"), 0, Duration.ZERO);
  }

  public CacheConfig withDir(Path dir) {
    return new CacheConfig(dir, maxSize, scrubInterval);
  }

  public boolean bounded() {
    return maxSize > 0;
  }
}
