package io.registrymirror.config;

import java.net.URI;
import java.time.Duration;

/**
 * One upstream registry.
 *
 * @param name the registry name clients know, e.g. {@code docker.io}
 * @param url where its API lives, e.g. {@code https://registry-1.docker.io}
 * @param isDefault whether requests that name no registry go here
 * @param tagTtl how long a tag's resolution is trusted before it is revalidated upstream
 * @param connectTimeout bound on opening a connection
 * @param idleTimeout bound on waiting for response headers and between body chunks, so that a
 *     stalled upstream fails while a large blob that keeps flowing never does
 * @param minRate bytes per second below which a blob transfer counts as stalled (0: never)
 * @param rateWindow how long a transfer may stay below {@code minRate}: a drip that keeps the
 *     idle timeout from firing is cut after this, and resumed
 * @param credentials what to authenticate with, to the registry (Basic) or its token service
 *     (Bearer); null to go anonymously
 * @param refreshBudget how many tag revalidations per minute the background refresher may send
 */
public record UpstreamConfig(
    String name,
    URI url,
    boolean isDefault,
    Duration tagTtl,
    Duration connectTimeout,
    Duration idleTimeout,
    long minRate,
    Duration rateWindow,
    Credentials credentials,
    int refreshBudget) {

  public static final Duration DEFAULT_TAG_TTL = Duration.ofMinutes(1);
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
  public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(30);
  public static final long DEFAULT_MIN_RATE = 16 * 1024;
  public static final Duration DEFAULT_RATE_WINDOW = Duration.ofSeconds(30);
  public static final int DEFAULT_REFRESH_BUDGET = 60;

  public static UpstreamConfig dockerHub() {
    return new UpstreamConfig("docker.io", URI.create("https://registry-1.docker.io"), true,
        DEFAULT_TAG_TTL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE,
        DEFAULT_RATE_WINDOW, null, DEFAULT_REFRESH_BUDGET);
  }

  public UpstreamConfig asDefault() {
    return new UpstreamConfig(name, url, true, tagTtl, connectTimeout, idleTimeout, minRate, rateWindow,
        credentials, refreshBudget);
  }

  public UpstreamConfig withCredentials(Credentials credentials) {
    return new UpstreamConfig(name, url, isDefault, tagTtl, connectTimeout, idleTimeout, minRate,
        rateWindow, credentials, refreshBudget);
  }

  /** Docker Hub keeps official images under {@code library/}; clients may leave it out. */
  public boolean isDockerHub() {
    return name.equals("docker.io");
  }
}
