package io.registrymirror.upstream;

import io.registrymirror.error.OciError;
import io.registrymirror.oci.RepositoryName;
import java.util.Collection;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The configured upstreams, and which one a request means. Only these are ever contacted: a
 * request naming any other registry is refused before any connection is made.
 */
public final class Upstreams {

  private final Map<String, UpstreamClient> byName;
  private final UpstreamClient fallback;

  public Upstreams(Collection<UpstreamClient> clients) {
    this.byName = clients.stream().collect(Collectors.toMap(UpstreamClient::name, Function.identity()));
    this.fallback = clients.stream().filter(c -> c.config().isDefault()).findFirst().orElse(null);
  }

  /** Every configured upstream, in no particular order. */
  public Collection<UpstreamClient> all() {
    return byName.values();
  }

  /** The configured upstream of that name, or null. */
  public UpstreamClient byName(String name) {
    return byName.get(name);
  }

  /**
   * Routes by containerd's {@code ns} parameter first, then by a registry name as the first path
   * component ({@code /v2/ghcr.io/owner/repo/...}), then to the default upstream. A registry
   * name is only ever looked up among the configured upstreams.
   */
  public Target route(String ns, RepositoryName name) {
    UpstreamClient upstream;
    String path = name.value();
    if (ns != null) {
      upstream = byName.get(ns);
      if (upstream == null) {
        throw OciError.NAME_UNKNOWN.exception("registry " + ns + " is not mirrored here");
      }
      // containerd with override_path sends both: /v2/<registry>/<name>/...?ns=<registry>.
      if (path.indexOf('/') > 0 && name.firstComponent().equals(ns)) {
        path = path.substring(ns.length() + 1);
      }
    } else if (path.indexOf('/') > 0 && byName.containsKey(name.firstComponent())) {
      upstream = byName.get(name.firstComponent());
      path = path.substring(name.firstComponent().length() + 1);
    } else if (fallback != null) {
      upstream = fallback;
    } else {
      throw OciError.NAME_UNKNOWN.exception("no default upstream: name the registry in the path");
    }
    if (upstream.config().isDockerHub() && path.indexOf('/') < 0) {
      // Docker Hub's official images live under library/; `alpine` means `library/alpine`.
      path = "library/" + path;
    }
    if (!RepositoryName.valid(path)) {
      throw OciError.NAME_INVALID.exception("repository name too long once normalised");
    }
    return new Target(upstream, new RepositoryName(path));
  }
}
