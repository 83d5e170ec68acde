package io.registrymirror.config;

import io.registrymirror.oci.HttpUrl;
import static io.registrymirror.config.ConfigValues.checkKeys;
import static io.registrymirror.config.ConfigValues.count;
import static io.registrymirror.config.ConfigValues.duration;
import static io.registrymirror.config.ConfigValues.list;
import static io.registrymirror.config.ConfigValues.readSecret;
import static io.registrymirror.config.ConfigValues.requireObject;
import static io.registrymirror.config.ConfigValues.size;
import static io.registrymirror.config.ConfigValues.text;
import static io.registrymirror.config.ConfigValues.url;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** The {@code upstreams} section of the configuration: each registry, its timeouts and credentials. */
final class UpstreamsSection {

  private static final Pattern HOST_NAME =
      Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]");
  private static final Pattern REGISTRY_NAME =
      Pattern.compile("[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?");

  private UpstreamsSection() {}

  static Map<String, UpstreamConfig> parse(JsonNode node) {
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
            ? list(node, key + ".tokenRealms", "origins like https://auth.example.com", UpstreamsSection::tokenRealm)
            : UpstreamConfig.defaultTokenRealms(url),
        list(node, key + ".allowPrivateHosts", "host names", (k, item) -> hostName(k, text(item, k))));
  }

  /** Credentials never go to a realm over plain http on another origin, so such an entry is a mistake. */
  private static URI tokenRealm(String key, JsonNode item) {
    URI origin = url(key, text(item, key));
    if (!HttpUrl.isHttps(origin)) {
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
    return Credentials.checked(key + ".username", username, key + ".password", password);
  }
}
