package io.registrymirror.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
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

  private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h|d)");
  private static final Pattern SIZE = Pattern.compile("(\\d{1,12})(B|KiB|MiB|GiB)?");
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
    checkKeys(root, "", Set.of("listen", "cache", "upstreams"));
    if (root.has("listen")) {
      HostPort listen = hostPort("listen", text(root.get("listen"), "listen"));
      config = config.withListen(listen.host, listen.port);
    }
    if (root.has("cache")) {
      JsonNode cache = root.get("cache");
      requireObject(cache, "cache");
      checkKeys(cache, "cache.", Set.of("dir"));
      if (cache.has("dir")) {
        config = config.withCacheDir(path("cache.dir", text(cache.get("dir"), "cache.dir")));
      }
    }
    if (root.has("upstreams")) {
      config = new MirrorConfig(config.host(), config.port(), config.cacheDir(),
          upstreams(root.get("upstreams")));
    }
    return config;
  }

  static MirrorConfig applyEnv(MirrorConfig config, Map<String, String> env) {
    String listen = env.get(ENV_LISTEN);
    if (listen != null && !listen.isBlank()) {
      HostPort hp = hostPort(ENV_LISTEN, listen.trim());
      config = config.withListen(hp.host, hp.port);
    }
    String dir = env.get(ENV_CACHE_DIR);
    if (dir != null && !dir.isBlank()) {
      config = config.withCacheDir(path(ENV_CACHE_DIR, dir.trim()));
    }
    return config;
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
        "minRate", "rateWindow"));
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
        duration(node, key, "rateWindow", UpstreamConfig.DEFAULT_RATE_WINDOW));
  }

  private static URI url(String key, String value) {
    URI uri;
    try {
      uri = new URI(value);
    } catch (URISyntaxException e) {
      throw new ConfigException(key, "not a URL: '" + value + "'");
    }
    if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))
        || uri.getHost() == null) {
      throw new ConfigException(key, "must be an http:// or https:// URL with a host: '" + value + "'");
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null || uri.getRawUserInfo() != null) {
      throw new ConfigException(key, "must not carry a query, fragment or credentials: '" + value + "'");
    }
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    if (!path.isEmpty() && !path.equals("/")) {
      throw new ConfigException(key, "must be the registry root, without a path: '" + value + "'");
    }
    return URI.create(uri.getScheme() + "://" + uri.getRawAuthority());
  }

  private static Duration duration(JsonNode node, String parent, String field, Duration fallback) {
    if (!node.has(field)) {
      return fallback;
    }
    String key = parent + "." + field;
    Matcher m = matching(node.get(field), key, DURATION, "a duration like 500ms, 30s, 5m, 1h or 7d");
    long n = Long.parseLong(m.group(1));
    Duration d = switch (m.group(2)) {
      case "ms" -> Duration.ofMillis(n);
      case "s" -> Duration.ofSeconds(n);
      case "m" -> Duration.ofMinutes(n);
      case "h" -> Duration.ofHours(n);
      default -> Duration.ofDays(n);
    };
    if (d.isZero() && !field.equals("tagTtl")) {
      throw new ConfigException(key, "must be more than zero");
    }
    return d;
  }

  /** A size such as {@code 0}, {@code 512B}, {@code 16KiB} or {@code 1MiB}. */
  private static long size(JsonNode node, String parent, String field, long fallback) {
    if (!node.has(field)) {
      return fallback;
    }
    Matcher m = matching(node.get(field), parent + "." + field, SIZE, "a size like 0, 512B, 16KiB or 1MiB");
    long n = Long.parseLong(m.group(1));
    int shift = switch (m.group(2) == null ? "" : m.group(2)) {
      case "KiB" -> 10;
      case "MiB" -> 20;
      case "GiB" -> 30;
      default -> 0;
    };
    return n << shift;
  }

  private static Matcher matching(JsonNode value, String key, Pattern pattern, String expected) {
    String text = text(value, key);
    Matcher m = pattern.matcher(text);
    if (!m.matches()) {
      throw new ConfigException(key, "not " + expected + ": '" + text + "'");
    }
    return m;
  }

  private record HostPort(String host, int port) {}

  private static HostPort hostPort(String key, String value) {
    int colon = value.lastIndexOf(':');
    if (colon < 0) {
      throw new ConfigException(key, "must be host:port, e.g. 0.0.0.0:5000: '" + value + "'");
    }
    String host = value.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    if (host.isEmpty()) {
      host = "0.0.0.0";
    }
    int port;
    try {
      port = Integer.parseInt(value.substring(colon + 1));
    } catch (NumberFormatException e) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      throw new ConfigException(key, "port must be a number from 0 to 65535: '" + value + "'");
    }
    return new HostPort(host, port);
  }

  private static Path path(String key, String value) {
    if (value.isBlank() || value.indexOf('\0') >= 0) {
      throw new ConfigException(key, "must be a directory path");
    }
    return Path.of(value);
  }

  private static String text(JsonNode node, String key) {
    if (node == null || !node.isValueNode() || node.isNull()) {
      throw new ConfigException(key, "must be a single value");
    }
    return node.asText();
  }

  private static void requireObject(JsonNode node, String key) {
    if (node == null || !node.isObject()) {
      throw new ConfigException(key, "must be a mapping of keys to values");
    }
  }

  private static void checkKeys(JsonNode node, String prefix, Set<String> known) {
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!known.contains(name)) {
        throw new ConfigException(prefix + name, "unknown key (known here: "
            + String.join(", ", known.stream().sorted().toList()) + ")");
      }
    }
  }
}
