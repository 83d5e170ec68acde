package io.registrymirror.config;

import static io.registrymirror.config.ConfigValues.checkKeys;
import static io.registrymirror.config.ConfigValues.count;
import static io.registrymirror.config.ConfigValues.duration;
import static io.registrymirror.config.ConfigValues.hostPort;
import static io.registrymirror.config.ConfigValues.httpUrl;
import static io.registrymirror.config.ConfigValues.list;
import static io.registrymirror.config.ConfigValues.path;
import static io.registrymirror.config.ConfigValues.readSecret;
import static io.registrymirror.config.ConfigValues.readText;
import static io.registrymirror.config.ConfigValues.readable;
import static io.registrymirror.config.ConfigValues.requireObject;
import static io.registrymirror.config.ConfigValues.section;
import static io.registrymirror.config.ConfigValues.size;
import static io.registrymirror.config.ConfigValues.text;
import static io.registrymirror.config.ConfigValues.url;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.registrymirror.oci.Digest;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads the YAML configuration and the environment overrides into a {@link MirrorConfig}.
 *
 * <p>Validation is strict: an unknown key is an error, since a misspelt key silently ignored
 * is a setting the operator believes is on. Every message names the offending key.
 */
public final class ConfigLoader {

  public static final String ENV_LISTEN = "MIRROR_LISTEN";
  public static final String ENV_CACHE_DIR = "MIRROR_CACHE_DIR";
  /** Followed by the upstream's name in capitals, non-alphanumerics as {@code _}, e.g. DOCKER_IO. */
  public static final String ENV_UPSTREAM_PREFIX = "MIRROR_UPSTREAM_";
  public static final String ENV_TLS_CERT = "MIRROR_TLS_CERT";
  public static final String ENV_TLS_KEY = "MIRROR_TLS_KEY";
  public static final String ENV_HTPASSWD = "MIRROR_HTPASSWD";

  private static final Pattern PLATFORM = Pattern.compile("[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?");
  private static final Pattern HOST_NAME =
      Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]");
  private static final Pattern REGISTRY_NAME =
      Pattern.compile("[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?");

  private ConfigLoader() {}

  /** Loads {@code file} (or the built-in defaults when null), then applies the environment. */
  public static MirrorConfig load(Path file, Map<String, String> env) {
    MirrorConfig config;
    if (file == null) {
      config = MirrorConfig.defaults();
    } else {
      String text;
      try {
        text = Files.readString(file);
      } catch (NoSuchFileException e) {
        throw new ConfigException(file + ": no such file", e);
      } catch (IOException e) {
        throw new ConfigException(file + ": cannot be read: " + e.getMessage(), e);
      }
      config = parse(text);
    }
    return applyEnv(config, env);
  }

  /** Parses a YAML document; keys that are absent take their defaults. */
  public static MirrorConfig parse(String yaml) {
    JsonNode root;
    try {
      root = new YAMLMapper().readTree(yaml);
    } catch (JsonProcessingException e) {
      throw new ConfigException("not valid YAML: " + e.getOriginalMessage()
          + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr()), e);
    }
    MirrorConfig config = MirrorConfig.defaults();
    if (root == null || root.isMissingNode() || root.isNull()) {
      return config;
    }
    requireObject(root, "(top level)");
    checkKeys(root, "", Set.of("listen", "cache", "upstreams", "tls", "auth", "tags", "limits"));
    if (root.has("listen")) {
      ConfigValues.HostPort listen = hostPort("listen", text(root.get("listen"), "listen"));
      config = config.withListen(listen.host(), listen.port());
    }
    if (root.has("cache")) {
      JsonNode cache = section(root, "cache", "dir");
      if (cache.has("dir")) {
        config = config.withCacheDir(path("cache.dir", text(cache.get("dir"), "cache.dir")));
      }
    }
    if (root.has("upstreams")) {
      config = config.withUpstreams(upstreams(root.get("upstreams")));
    }
    if (root.has("tls")) {
      JsonNode tls = section(root, "tls", "cert", "key");
      config = config.withTls(tls(
          "tls.cert", tls.has("cert") ? text(tls.get("cert"), "tls.cert") : null,
          "tls.key", tls.has("key") ? text(tls.get("key"), "tls.key") : null));
    }
    if (root.has("tags")) {
      config = config.withTags(tags(section(root, "tags", "refreshInterval", "refreshConcurrency",
          "forgetAfter", "history", "webhooks", "rules")));
    }
    if (root.has("auth")) {
      JsonNode auth = section(root, "auth", "htpasswd");
      if (auth.has("htpasswd")) {
        config = config.withHtpasswd(htpasswd("auth.htpasswd", text(auth.get("htpasswd"), "auth.htpasswd")));
      }
    }
    if (root.has("limits")) {
      config = config.withLimits(limits(section(root, "limits", "headerTimeout", "connections",
          "connectionsPerClient", "loginFailures", "loginFailureWindow")));
    }
    return config;
  }

  static MirrorConfig applyEnv(MirrorConfig config, Map<String, String> env) {
    String listen = env.get(ENV_LISTEN);
    if (listen != null && !listen.isBlank()) {
      ConfigValues.HostPort hp = hostPort(ENV_LISTEN, listen.trim());
      config = config.withListen(hp.host(), hp.port());
    }
    String dir = env.get(ENV_CACHE_DIR);
    if (dir != null && !dir.isBlank()) {
      config = config.withCacheDir(path(ENV_CACHE_DIR, dir.trim()));
    }
    Map<String, UpstreamConfig> upstreams = new LinkedHashMap<>();
    for (UpstreamConfig u : config.upstreams().values()) {
      upstreams.put(u.name(), envCredentials(u, env));
    }
    config = config.withUpstreams(upstreams);
    String cert = env.get(ENV_TLS_CERT);
    String key = env.get(ENV_TLS_KEY);
    if (cert != null || key != null) {
      TlsConfig file = config.tls();
      config = config.withTls(tls(
          cert != null ? ENV_TLS_CERT : "tls.cert", cert != null ? cert : file == null ? null : file.cert().toString(),
          key != null ? ENV_TLS_KEY : "tls.key", key != null ? key : file == null ? null : file.key().toString()));
    }
    String htpasswd = env.get(ENV_HTPASSWD);
    if (htpasswd != null) {
      config = config.withHtpasswd(htpasswd(ENV_HTPASSWD, htpasswd));
    }
    return config;
  }

  private static TlsConfig tls(String certKey, String cert, String keyKey, String key) {
    if (cert == null) {
      throw new ConfigException(certKey, "missing: a TLS key needs its certificate");
    }
    if (key == null) {
      throw new ConfigException(keyKey, "missing: a TLS certificate needs its key");
    }
    return new TlsConfig(readable(certKey, cert, "-----BEGIN CERTIFICATE-----"),
        readable(keyKey, key, "PRIVATE KEY-----"));
  }

  private static Htpasswd htpasswd(String key, String file) {
    return Htpasswd.parse(key, Path.of(file), readText(key, file));
  }

  private static LimitsConfig limits(JsonNode node) {
    LimitsConfig d = LimitsConfig.defaults();
    LimitsConfig limits = new LimitsConfig(
        duration(node, "limits", "headerTimeout", d.headerTimeout()),
        count(node, "limits", "connections", d.connections(), 1),
        count(node, "limits", "connectionsPerClient", d.connectionsPerClient(), 1),
        count(node, "limits", "loginFailures", d.loginFailures(), 1),
        duration(node, "limits", "loginFailureWindow", d.loginFailureWindow()));
    if (limits.connectionsPerClient() > limits.connections()) {
      throw new ConfigException("limits.connectionsPerClient", "must not be more than limits.connections ("
          + limits.connections() + ")");
    }
    return limits;
  }

  /** The upstream with the environment's user name and password, each overriding the file's. */
  private static UpstreamConfig envCredentials(UpstreamConfig upstream, Map<String, String> env) {
    String prefix = ENV_UPSTREAM_PREFIX + upstream.name().toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_") + "_";
    Credentials file = upstream.credentials();
    String username = env.getOrDefault(prefix + "USERNAME", file == null ? null : file.username());
    String password = env.get(prefix + "PASSWORD");
    String passwordFile = env.get(prefix + "PASSWORD_FILE");
    if (password != null && passwordFile != null) {
      throw new ConfigException(prefix + "PASSWORD", "set it or " + prefix + "PASSWORD_FILE, not both");
    }
    Path watched = password == null ? upstream.passwordFile() : null;
    if (passwordFile != null) {
      password = readSecret(prefix + "PASSWORD_FILE", passwordFile);
      watched = Path.of(passwordFile);
    } else if (password == null) {
      password = file == null ? null : file.password();
    }
    return upstream.withCredentials(
        credentials(prefix + "USERNAME", username, prefix + "PASSWORD", password), watched);
  }

  private static Credentials credentials(String userKey, String username, String passwordKey, String password) {
    if (username == null && password == null) {
      return null;
    }
    if (username == null || username.isEmpty()) {
      throw new ConfigException(userKey, "missing: a password needs a user name");
    }
    if (password == null) {
      throw new ConfigException(passwordKey, "missing: a user name needs a password");
    }
    if (username.indexOf(':') >= 0 || username.chars().anyMatch(Character::isISOControl)) {
      throw new ConfigException(userKey, "must not contain ':' or control characters");
    }
    return new Credentials(username, password);
  }

  private static Map<String, UpstreamConfig> upstreams(JsonNode node) {
    requireObject(node, "upstreams");
    if (node.isEmpty()) {
      throw new ConfigException("upstreams", "at least one upstream is needed");
    }
    Map<String, UpstreamConfig> out = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      out.put(e.getKey(), upstream(e.getKey(), e.getValue()));
    }
    long defaults = out.values().stream().filter(UpstreamConfig::isDefault).count();
    if (defaults > 1) {
      throw new ConfigException("upstreams", "only one upstream can be the default");
    }
    if (defaults == 0 && out.size() == 1) {
      // A single upstream is the obvious target of requests that name no registry.
      UpstreamConfig only = out.values().iterator().next();
      out.put(only.name(), only.asDefault());
    }
    return out;
  }

  private static UpstreamConfig upstream(String name, JsonNode node) {
    String key = "upstreams." + name;
    if (!REGISTRY_NAME.matcher(name).matches()) {
      throw new ConfigException(key, "not a registry name (like docker.io or ghcr.io)");
    }
    requireObject(node, key);
    checkKeys(node, key + ".", Set.of("url", "default", "tagTtl", "connectTimeout", "idleTimeout",
        "minRate", "rateWindow", "username", "password", "passwordFile", "refreshBudget",
        "passwordFileCheck", "tokenRealms", "allowPrivateHosts"));
    if (!node.has("url")) {
      throw new ConfigException(key + ".url", "missing");
    }
    URI url = url(key + ".url", text(node.get("url"), key + ".url"));
    boolean isDefault = false;
    if (node.has("default")) {
      if (!node.get("default").isBoolean()) {
        throw new ConfigException(key + ".default", "must be true or false");
      }
      isDefault = node.get("default").booleanValue();
    }
    return new UpstreamConfig(name, url, isDefault,
        duration(node, key, "tagTtl", UpstreamConfig.DEFAULT_TAG_TTL),
        duration(node, key, "connectTimeout", UpstreamConfig.DEFAULT_CONNECT_TIMEOUT),
        duration(node, key, "idleTimeout", UpstreamConfig.DEFAULT_IDLE_TIMEOUT),
        size(node, key, "minRate", UpstreamConfig.DEFAULT_MIN_RATE),
        duration(node, key, "rateWindow", UpstreamConfig.DEFAULT_RATE_WINDOW),
        fileCredentials(node, key),
        count(node, key, "refreshBudget", UpstreamConfig.DEFAULT_REFRESH_BUDGET, 1),
        node.has("passwordFile") ? Path.of(text(node.get("passwordFile"), key + ".passwordFile")) : null,
        duration(node, key, "passwordFileCheck", UpstreamConfig.DEFAULT_PASSWORD_FILE_CHECK),
        node.has("tokenRealms")
            ? list(node, key + ".tokenRealms", "origins like https://auth.example.com", ConfigLoader::tokenRealm)
            : UpstreamConfig.defaultTokenRealms(url),
        list(node, key + ".allowPrivateHosts", "host names", (k, item) -> hostName(k, text(item, k))));
  }

  /** Credentials never go to a realm over plain http on another origin, so such an entry is a mistake. */
  private static URI tokenRealm(String key, JsonNode item) {
    URI origin = url(key, text(item, key));
    if (!"https".equals(origin.getScheme())) {
      throw new ConfigException(key, "must be an https:// origin: credentials are not sent over plain http");
    }
    return origin;
  }

  /** A host name as a URL would carry it, compared case-insensitively. */
  private static String hostName(String key, String value) {
    if (!HOST_NAME.matcher(value).matches()) {
      throw new ConfigException(key, "not a host name like cdn.example.com or 10.0.0.5: '" + value + "'");
    }
    return value.toLowerCase(Locale.ROOT);
  }

  private static Credentials fileCredentials(JsonNode node, String key) {
    String username = node.has("username") ? text(node.get("username"), key + ".username") : null;
    String password = node.has("password") ? text(node.get("password"), key + ".password") : null;
    if (node.has("passwordFile")) {
      if (password != null) {
        throw new ConfigException(key + ".password", "set it or passwordFile, not both");
      }
      password = readSecret(key + ".passwordFile", text(node.get("passwordFile"), key + ".passwordFile"));
    }
    return credentials(key + ".username", username, key + ".password", password);
  }

  private static TagsConfig tags(JsonNode node) {
    TagsConfig d = TagsConfig.defaults();
    List<URI> webhooks = list(node, "tags.webhooks", "URLs", (key, item) -> httpUrl(key, text(item, key)));
    List<TagRule> rules = list(node, "tags.rules", "rules", ConfigLoader::rule);
    return new TagsConfig(
        duration(node, "tags", "refreshInterval", d.refreshInterval()),
        count(node, "tags", "refreshConcurrency", d.refreshConcurrency(), 1),
        duration(node, "tags", "forgetAfter", d.forgetAfter()),
        count(node, "tags", "history", d.history(), 1),
        webhooks, rules);
  }

  private static TagRule rule(String key, JsonNode node) {
    requireObject(node, key);
    checkKeys(node, key + ".", Set.of("repositories", "tags", "ttl", "pin", "warm"));
    String repositories = node.has("repositories") ? text(node.get("repositories"), key + ".repositories") : "*";
    String tags = node.has("tags") ? text(node.get("tags"), key + ".tags") : "*";
    Duration ttl = node.has("ttl") ? duration(node, key, "ttl", null) : null;
    boolean pin = false;
    Digest digest = null;
    if (node.has("pin")) {
      JsonNode p = node.get("pin");
      if (p.isBoolean()) {
        pin = p.booleanValue();
      } else {
        digest = Digest.parseOrNull(text(p, key + ".pin"));
        if (digest == null) {
          throw new ConfigException(key + ".pin", "must be true, false or a digest like sha256:<64 hex>");
        }
        pin = true;
      }
    }
    List<String> warm = list(node, key + ".warm", "platforms like linux/amd64", (k, item) -> {
      String platform = text(item, k);
      if (!PLATFORM.matcher(platform).matches()) {
        throw new ConfigException(k, "not a platform like linux/amd64 or linux/arm64/v8: '" + platform + "'");
      }
      return platform;
    });
    if (ttl == null && !pin && warm.isEmpty()) {
      throw new ConfigException(key, "sets none of ttl, pin and warm");
    }
    return new TagRule(repositories, tags, ttl, pin, digest, warm);
  }

}
