package io.registrymirror.config;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * One upstream registry.
 *
 * @param name the registry name clients know, e.g. {@code docker.io}
 * @param url where its API lives, e.g. {@code https://registry-1.docker.io}
 * @param isDefault whether requests that name no registry go here
 * @param tagTtl how long a tag's resolution is trusted before it is revalidated upstream
 * @param connectTimeout bound on opening a connection
 * @param idleTimeout bound on waiting for response headers and between body chunks, so that a
 *     stalled upstream fails while a large blob that keeps flowing never does; and on an answer
 *     read whole (a manifest, a listing, a token), from its headers to its end
 * @param minRate bytes per second below which a blob transfer counts as stalled (0: never)
 * @param rateWindow how long a transfer may stay below {@code minRate}: a drip that keeps the
 *     idle timeout from firing is cut after this, and resumed
 * @param credentials what to authenticate with, to the registry (Basic) or its token service
 *     (Bearer); null to go anonymously
 * @param refreshBudget how many tag revalidations per minute the background refresher may send
 * @param passwordFile where the password was read from, to be re-read when it changes (a
 *     rotated Kubernetes Secret); null when it was given inline or there is none
 * @param passwordFileCheck how often {@code passwordFile} is looked at for a new password
 * @param tokenRealms origins ({@code https://host[:port]}) besides the upstream's own whose token
 *     realm may receive the credentials
 * @param allowPrivateHosts hosts that redirects and token realms may lead to although they resolve
 *     to loopback, link-local or private addresses
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
    int refreshBudget,
    Path passwordFile,
    Duration passwordFileCheck,
    List<URI> tokenRealms,
    List<String> allowPrivateHosts) {

  public static final Duration DEFAULT_TAG_TTL = Duration.ofMinutes(1);
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
  public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(30);
  public static final long DEFAULT_MIN_RATE = 16 * 1024;
  public static final Duration DEFAULT_RATE_WINDOW = Duration.ofSeconds(30);
  public static final int DEFAULT_REFRESH_BUDGET = 60;
  public static final Duration DEFAULT_PASSWORD_FILE_CHECK = Duration.ofSeconds(10);

  /**
   * Docker Hub's registry ({@code registry-1.docker.io}, also reachable as {@code index.docker.io})
   * sends its clients to {@code https://auth.docker.io/token}, another host:
   * without this default, Docker Hub credentials would stop working. Other registries keep their
   * token service on their own origin (ghcr.io, quay.io, gcr.io, Harbor, ACR) or are named by
   * {@code tokenRealms}. A rule such as "any host under the same parent domain" would need the
   * public suffix list to be safe: {@code a.azurecr.io} and {@code b.azurecr.io} belong to
   * different tenants.
   */
  public static List<URI> defaultTokenRealms(URI url) {
    String host = url.getHost().toLowerCase(Locale.ROOT);
    return host.equals("docker.io") || host.endsWith(".docker.io")
        ? List.of(URI.create("https://auth.docker.io")) : List.of();
  }

  public static UpstreamConfig dockerHub() {
    URI url = URI.create("https://registry-1.docker.io");
    return new UpstreamConfig("docker.io", url, true,
        DEFAULT_TAG_TTL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE,
        DEFAULT_RATE_WINDOW, null, DEFAULT_REFRESH_BUDGET, null, DEFAULT_PASSWORD_FILE_CHECK,
        defaultTokenRealms(url), List.of());
  }

  public UpstreamConfig asDefault() {
    return new UpstreamConfig(name, url, true, tagTtl, connectTimeout, idleTimeout, minRate, rateWindow,
        credentials, refreshBudget, passwordFile, passwordFileCheck, tokenRealms, allowPrivateHosts);
  }

  public UpstreamConfig withCredentials(Credentials credentials, Path passwordFile) {
    return new UpstreamConfig(name, url, isDefault, tagTtl, connectTimeout, idleTimeout, minRate,
        rateWindow, credentials, refreshBudget, passwordFile, passwordFileCheck, tokenRealms,
        allowPrivateHosts);
  }

  /** Docker Hub keeps official images under {@code library/}; clients may leave it out. */
  public boolean isDockerHub() {
    return name.equals("docker.io");
  }
}
