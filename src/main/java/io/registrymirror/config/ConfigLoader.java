package io.registrymirror.config;

import static io.registrymirror.config.ConfigValues.checkKeys;
import static io.registrymirror.config.ConfigValues.choice;
import static io.registrymirror.config.ConfigValues.count;
import static io.registrymirror.config.ConfigValues.duration;
import static io.registrymirror.config.ConfigValues.hostPort;
import static io.registrymirror.config.ConfigValues.path;
import static io.registrymirror.config.ConfigValues.readSecret;
import static io.registrymirror.config.ConfigValues.readText;
import static io.registrymirror.config.ConfigValues.readable;
import static io.registrymirror.config.ConfigValues.requireObject;
import static io.registrymirror.config.ConfigValues.section;
import static io.registrymirror.config.ConfigValues.size;
import static io.registrymirror.config.ConfigValues.text;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads the YAML configuration and the environment overrides into a {@link MirrorConfig}.
 *
 * <p>The {@code upstreams} and {@code tags} sections are read by {@link UpstreamsSection} and
 * {@link TagsSection}; the rest, the file and the environment here.
 *
 * <p>Validation is strict: an unknown key is an error, since a misspelt key silently ignored
 * is a setting the operator believes is on. Every message names the offending key.
 */
public final class ConfigLoader {

  public static final String ENV_LISTEN = "MIRROR_LISTEN";
  public static final String ENV_CACHE_DIR = "MIRROR_CACHE_DIR";
  public static final String ENV_ADMIN_TOKEN = "MIRROR_ADMIN_TOKEN";
  /** Followed by the upstream's name in capitals, non-alphanumerics as {@code _}, e.g. DOCKER_IO. */
  public static final String ENV_UPSTREAM_PREFIX = "MIRROR_UPSTREAM_";
  public static final String ENV_TLS_CERT = "MIRROR_TLS_CERT";
  public static final String ENV_TLS_KEY = "MIRROR_TLS_KEY";
  public static final String ENV_HTPASSWD = "MIRROR_HTPASSWD";
  public static final String ENV_LOG_FORMAT = "MIRROR_LOG_FORMAT";
  public static final String ENV_LOG_LEVEL = "MIRROR_LOG_LEVEL";
  /** Where other replicas reach this one; set from the pod's address in Kubernetes. */
  public static final String ENV_CLUSTER_ADVERTISE = "MIRROR_CLUSTER_ADVERTISE";
  /** The object storage tier, from a Secret in Kubernetes: a bucket turns it on. */
  public static final String ENV_S3_BUCKET = "MIRROR_S3_BUCKET";
  public static final String ENV_S3_ENDPOINT = "MIRROR_S3_ENDPOINT";
  public static final String ENV_S3_REGION = "MIRROR_S3_REGION";
  public static final String ENV_S3_PATH_STYLE = "MIRROR_S3_PATH_STYLE";

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
    checkKeys(root, "", Set.of("listen", "cache", "upstreams", "tls", "auth", "tags", "limits", "admin", "log",
        "shutdownGrace", "cluster", "s3"));
    if (root.has("listen")) {
      ConfigValues.HostPort listen = hostPort("listen", text(root.get("listen"), "listen"));
      config = config.withListen(listen.host(), listen.port());
    }
    if (root.has("cache")) {
      JsonNode cache = section(root, "cache", "dir", "maxSize", "scrubInterval");
      CacheConfig d = config.cache();
      config = config.withCache(new CacheConfig(
          cache.has("dir") ? path("cache.dir", text(cache.get("dir"), "cache.dir")) : d.dir(),
          size(cache, "cache", "maxSize", d.maxSize()),
          duration(cache, "cache", "scrubInterval", d.scrubInterval())));
    }
    if (root.has("upstreams")) {
      config = config.withUpstreams(UpstreamsSection.parse(root.get("upstreams")));
    }
    if (root.has("tls")) {
      JsonNode tls = section(root, "tls", "cert", "key");
      config = config.withTls(tls(
          "tls.cert", tls.has("cert") ? text(tls.get("cert"), "tls.cert") : null,
          "tls.key", tls.has("key") ? text(tls.get("key"), "tls.key") : null));
    }
    if (root.has("tags")) {
      config = config.withTags(TagsSection.parse(section(root, "tags", "refreshInterval", "refreshConcurrency",
          "forgetAfter", "history", "webhooks", "rules", "maxTracked")));
    }
    if (root.has("auth")) {
      JsonNode auth = section(root, "auth", "htpasswd");
      if (auth.has("htpasswd")) {
        config = config.withHtpasswd(htpasswd("auth.htpasswd", text(auth.get("htpasswd"), "auth.htpasswd")));
      }
    }
    if (root.has("admin")) {
      JsonNode admin = section(root, "admin", "token");
      if (admin.has("token")) {
        config = config.withAdminToken(adminToken("admin.token", text(admin.get("token"), "admin.token")));
      }
    }
    if (root.has("limits")) {
      config = config.withLimits(limits(section(root, "limits", "headerTimeout", "connections",
          "connectionsPerClient", "loginFailures", "loginFailureWindow", "sendTimeout")));
    }
    if (root.has("log")) {
      config = config.withLog(log(section(root, "log", "format", "level", "access")));
    }
    config = config.withShutdownGrace(duration(root, "", "shutdownGrace", config.shutdownGrace()));
    if (root.has("cluster")) {
      config = config.withCluster(ClusterSection.parse(section(root, "cluster", ClusterSection.KEYS)));
    }
    if (root.has("s3")) {
      config = config.withS3(S3Section.parse(section(root, "s3", S3Section.KEYS)));
    }
    return config;
  }

  private static LogConfig log(JsonNode node) {
    LogConfig d = LogConfig.defaults();
    boolean access = d.access();
    if (node.has("access")) {
      if (!node.get("access").isBoolean()) {
        throw new ConfigException("log.access", "must be true or false");
      }
      access = node.get("access").booleanValue();
    }
    return new LogConfig(
        node.has("format") ? choice("log.format", text(node.get("format"), "log.format"), LogConfig.Format.class)
            : d.format(),
        node.has("level") ? choice("log.level", text(node.get("level"), "log.level"), LogConfig.Level.class)
            : d.level(),
        access);
  }

  /**
   * A token that guards cache administration: long enough not to be guessed, and nothing a
   * header could not carry.
   */
  private static String adminToken(String key, String token) {
    if (token.length() < 16 || !token.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
      throw new ConfigException(key, "must be at least 16 printable characters without spaces");
    }
    return token;
  }

  static MirrorConfig applyEnv(MirrorConfig config, Map<String, String> env) {
    String listen = env.get(ENV_LISTEN);
    if (listen != null && !listen.isBlank()) {
      ConfigValues.HostPort hp = hostPort(ENV_LISTEN, listen.trim());
      config = config.withListen(hp.host(), hp.port());
    }
    String token = env.get(ENV_ADMIN_TOKEN);
    if (token != null && !token.isBlank()) {
      config = config.withAdminToken(adminToken(ENV_ADMIN_TOKEN, token.trim()));
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
    String format = env.get(ENV_LOG_FORMAT);
    if (format != null && !format.isBlank()) {
      config = config.withLog(config.log().withFormat(choice(ENV_LOG_FORMAT, format.trim(), LogConfig.Format.class)));
    }
    String level = env.get(ENV_LOG_LEVEL);
    if (level != null && !level.isBlank()) {
      config = config.withLog(config.log().withLevel(choice(ENV_LOG_LEVEL, level.trim(), LogConfig.Level.class)));
    }
    config = s3Env(config, env);
    String advertise = env.get(ENV_CLUSTER_ADVERTISE);
    if (advertise != null && !advertise.isBlank()) {
      if (config.cluster() == null) {
        throw new ConfigException(ENV_CLUSTER_ADVERTISE, "is set, but the configuration has no cluster section");
      }
      config = config.withCluster(config.cluster().withAdvertise(
          ClusterSection.advertise(ENV_CLUSTER_ADVERTISE, advertise.trim())));
    }
    return config;
  }

  /** The s3 section's keys from the environment, each over the file's; a bucket from either is needed. */
  private static MirrorConfig s3Env(MirrorConfig config, Map<String, String> env) {
    String bucket = blankless(env.get(ENV_S3_BUCKET));
    String endpoint = blankless(env.get(ENV_S3_ENDPOINT));
    String region = blankless(env.get(ENV_S3_REGION));
    String pathStyle = blankless(env.get(ENV_S3_PATH_STYLE));
    if (bucket == null && endpoint == null && region == null && pathStyle == null) {
      return config;
    }
    S3Config file = config.s3();
    if (bucket == null && file == null) {
      throw new ConfigException(ENV_S3_BUCKET, "missing: the other MIRROR_S3_ variables need a bucket, here or as s3.bucket");
    }
    return config.withS3(new S3Config(
        endpoint != null ? S3Section.endpoint(ENV_S3_ENDPOINT, endpoint) : file == null ? null : file.endpoint(),
        bucket != null ? S3Section.bucket(ENV_S3_BUCKET, bucket) : file.bucket(),
        region != null ? S3Section.region(ENV_S3_REGION, region) : file == null ? null : file.region(),
        pathStyle != null ? S3Section.bool(ENV_S3_PATH_STYLE, pathStyle) : file != null && file.pathStyle()));
  }

  private static String blankless(String value) {
    return value == null || value.isBlank() ? null : value.trim();
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
        duration(node, "limits", "loginFailureWindow", d.loginFailureWindow()),
        duration(node, "limits", "sendTimeout", d.sendTimeout()));
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
        Credentials.checked(prefix + "USERNAME", username, prefix + "PASSWORD", password), watched);
  }
}
