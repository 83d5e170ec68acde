package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {

  @Test
  void noFileMirrorsDockerHubIntoCacheOnPort5000() {
    MirrorConfig c = ConfigLoader.load(null, Map.of());
    assertThat(c.host()).isEqualTo("0.0.0.0");
    assertThat(c.port()).isEqualTo(5000);
    assertThat(c.cacheDir()).isEqualTo(Path.of("cache"));
    assertThat(c.defaultUpstream().name()).isEqualTo("docker.io");
    assertThat(c.defaultUpstream().url()).isEqualTo(URI.create("https://registry-1.docker.io"));
  }

  @Test
  void readsTheDocumentedExample() {
    MirrorConfig c = ConfigLoader.load(Path.of("conf/registry-mirror.yaml"), Map.of());
    assertThat(c.upstreams()).containsKey("docker.io");
    assertThat(c.defaultUpstream().name()).isEqualTo("docker.io");
    // The file shows the defaults: reading it changes nothing else.
    assertThat(c.cache()).isEqualTo(CacheConfig.defaults().withDir(Path.of("./cache")));
    assertThat(c.tags()).isEqualTo(TagsConfig.defaults());
    assertThat(c.adminToken()).isNull();
  }

  @Test
  void cacheBoundScrubTrackedTagsAndAdminToken() {
    MirrorConfig c = ConfigLoader.parse("""
        cache: {maxSize: 50GiB, scrubInterval: 7d}
        tags: {maxTracked: 500}
        admin: {token: 0123456789abcdef-secret}
        """);
    assertThat(c.cache().maxSize()).isEqualTo(50L << 30);
    assertThat(c.cache().bounded()).isTrue();
    assertThat(c.cache().scrubInterval()).isEqualTo(Duration.ofDays(7));
    assertThat(c.tags().maxTracked()).isEqualTo(500);
    assertThat(c.adminToken()).isEqualTo("0123456789abcdef-secret");
    assertThat(ConfigLoader.parse("cache: {maxSize: 2TiB}").cache().maxSize()).isEqualTo(2L << 40);
    assertThat(MirrorConfig.defaults().cache().bounded()).isFalse();
    assertThat(ConfigLoader.applyEnv(c, Map.of("MIRROR_ADMIN_TOKEN", "fedcba9876543210-other")).adminToken())
        .isEqualTo("fedcba9876543210-other");
    assertError("cache: {maxSize: lots}", "cache.maxSize: not a size");
    assertError("cache: {scrubInterval: weekly}", "cache.scrubInterval: not a duration");
    assertError("tags: {maxTracked: 0}", "tags.maxTracked: must be a whole number of at least 1");
    assertError("admin: {token: short}", "admin.token: must be at least 16 printable characters");
    assertError("admin: {tokens: x}", "admin.tokens: unknown key");
  }

  @Test
  void readsEveryKey(@TempDir Path dir) throws IOException {
    Path file = dir.resolve("m.yaml");
    Files.writeString(file, """
        listen: 127.0.0.1:5555
        cache:
          dir: /var/cache/mirror
        upstreams:
          docker.io:
            url: https://registry-1.docker.io
            default: true
            tagTtl: 5m
          ghcr.io:
            url: https://ghcr.io/
            connectTimeout: 3s
            idleTimeout: 500ms
            minRate: 64KiB
            rateWindow: 10s
        """);
    MirrorConfig c = ConfigLoader.load(file, Map.of());
    assertThat(c.host()).isEqualTo("127.0.0.1");
    assertThat(c.port()).isEqualTo(5555);
    assertThat(c.cacheDir()).isEqualTo(Path.of("/var/cache/mirror"));
    assertThat(c.upstreams().get("docker.io").tagTtl()).isEqualTo(Duration.ofMinutes(5));
    UpstreamConfig ghcr = c.upstreams().get("ghcr.io");
    assertThat(ghcr.isDefault()).isFalse();
    assertThat(ghcr.url()).isEqualTo(URI.create("https://ghcr.io"));
    assertThat(ghcr.connectTimeout()).isEqualTo(Duration.ofSeconds(3));
    assertThat(ghcr.idleTimeout()).isEqualTo(Duration.ofMillis(500));
    assertThat(ghcr.tagTtl()).isEqualTo(UpstreamConfig.DEFAULT_TAG_TTL);
    assertThat(ghcr.minRate()).isEqualTo(64 * 1024);
    assertThat(ghcr.rateWindow()).isEqualTo(Duration.ofSeconds(10));
    assertThat(c.upstreams().get("docker.io").minRate()).isEqualTo(UpstreamConfig.DEFAULT_MIN_RATE);
  }

  @Test
  void environmentOverridesTheFile() {
    MirrorConfig c = ConfigLoader.applyEnv(ConfigLoader.parse("listen: 0.0.0.0:5000"),
        Map.of("MIRROR_LISTEN", ":6000", "MIRROR_CACHE_DIR", "/tmp/c"));
    assertThat(c.host()).isEqualTo("0.0.0.0");
    assertThat(c.port()).isEqualTo(6000);
    assertThat(c.cacheDir()).isEqualTo(Path.of("/tmp/c"));
  }

  @Test
  void aSingleUpstreamIsTheDefault() {
    MirrorConfig c = ConfigLoader.parse("upstreams: {local: {url: 'http://127.0.0.1:5001'}}");
    assertThat(c.defaultUpstream().name()).isEqualTo("local");
  }

  @Test
  void errorsNameTheKey() {
    assertError("listen: nowhere", "listen: must be host:port");
    assertError("listen: ':99999'", "listen: port must be");
    assertError("cache: {dri: x}", "cache.dri: unknown key");
    assertError("caches: {}", "caches: unknown key");
    assertError("upstreams: {}", "upstreams: at least one upstream");
    assertError("upstreams: {hub: {}}", "upstreams.hub.url: missing");
    assertError("upstreams: {hub: {url: 'ftp://x'}}", "upstreams.hub.url: must be an http");
    assertError("upstreams: {hub: {url: 'https://x/v2'}}", "upstreams.hub.url: must be the registry root");
    assertError("upstreams: {hub: {url: 'https://x', tagTtl: soon}}", "upstreams.hub.tagTtl: not a duration");
    assertError("upstreams: {hub: {url: 'https://x', default: yes please}}", "upstreams.hub.default");
    assertError("upstreams: {hub: {url: 'https://x', idleTimeout: 0s}}", "upstreams.hub.idleTimeout: must be more than zero");
    assertError("upstreams: {Hub!: {url: 'https://x'}}", "upstreams.Hub!: not a registry name");
    assertError("upstreams: {a: {url: 'https://a', default: true}, b: {url: 'https://b', default: true}}",
        "only one upstream can be the default");
    assertError("upstreams: {hub: {url: 'https://x', minRate: fast}}", "upstreams.hub.minRate: not a size");
    assertError("listen: [1, 2]", "listen: must be a single value");
    assertError("listen: {{", "not valid YAML");
  }

  @Test
  void environmentErrorsNameTheVariable() {
    assertThatThrownBy(() -> ConfigLoader.applyEnv(MirrorConfig.defaults(), Map.of("MIRROR_LISTEN", "x")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("MIRROR_LISTEN: ");
  }

  @Test
  void missingFileIsNamed() {
    assertThatThrownBy(() -> ConfigLoader.load(Path.of("/nonexistent/m.yaml"), Map.of()))
        .isInstanceOf(ConfigException.class).hasMessageContaining("/nonexistent/m.yaml: no such file");
  }

  private static void assertError(String yaml, String message) {
    assertThatThrownBy(() -> ConfigLoader.parse(yaml))
        .isInstanceOf(ConfigException.class).hasMessageContaining(message);
  }

  @Test
  void credentialsComeFromTheFileASecretFileOrTheEnvironment(@TempDir Path dir) throws IOException {
    Path secret = dir.resolve("password");
    Files.writeString(secret, "from-secret-file\n");
    Path file = dir.resolve("m.yaml");
    Files.writeString(file, """
        upstreams:
          docker.io:
            url: https://registry-1.docker.io
            username: hub-user
            password: from-config
          ghcr.io:
            url: https://ghcr.io
            username: gh-user
            passwordFile: %s
          quay.io:
            url: https://quay.io
        """.formatted(secret));
    MirrorConfig fromFile = ConfigLoader.load(file, Map.of());
    assertThat(fromFile.upstreams().get("docker.io").credentials())
        .isEqualTo(new Credentials("hub-user", "from-config"));
    // One trailing newline, as `echo` or a Secret written by hand leaves it, is not the password's.
    assertThat(fromFile.upstreams().get("ghcr.io").credentials())
        .isEqualTo(new Credentials("gh-user", "from-secret-file"));
    assertThat(fromFile.upstreams().get("quay.io").credentials()).isNull();

    MirrorConfig fromEnv = ConfigLoader.load(file, Map.of(
        "MIRROR_UPSTREAM_DOCKER_IO_PASSWORD", "from-env",
        "MIRROR_UPSTREAM_QUAY_IO_USERNAME", "robot",
        "MIRROR_UPSTREAM_QUAY_IO_PASSWORD_FILE", secret.toString()));
    assertThat(fromEnv.upstreams().get("docker.io").credentials())
        .isEqualTo(new Credentials("hub-user", "from-env"));
    assertThat(fromEnv.upstreams().get("quay.io").credentials())
        .isEqualTo(new Credentials("robot", "from-secret-file"));
  }

  @Test
  void incompleteCredentialsNameTheKeyAndNeverThePassword(@TempDir Path dir) {
    String base = "upstreams:\n  ghcr.io:\n    url: https://ghcr.io\n";
    assertThatThrownBy(() -> ConfigLoader.parse(base + "    password: hunter2-secret\n"))
        .hasMessageContaining("upstreams.ghcr.io.username").hasMessageNotContaining("hunter2");
    assertThatThrownBy(() -> ConfigLoader.parse(base + "    username: bot\n"))
        .hasMessageContaining("upstreams.ghcr.io.password");
    assertThatThrownBy(() -> ConfigLoader.parse(base
        + "    username: bot\n    password: x\n    passwordFile: /run/secrets/p\n"))
        .hasMessageContaining("upstreams.ghcr.io.password");
    assertThatThrownBy(() -> ConfigLoader.parse(base
        + "    username: bot\n    passwordFile: " + dir.resolve("missing") + "\n"))
        .hasMessageContaining("upstreams.ghcr.io.passwordFile");
    assertThatThrownBy(() -> ConfigLoader.load(null, Map.of("MIRROR_UPSTREAM_DOCKER_IO_PASSWORD", "hunter2-secret")))
        .hasMessageContaining("MIRROR_UPSTREAM_DOCKER_IO_USERNAME").hasMessageNotContaining("hunter2");
    assertThat(new Credentials("bot", "hunter2-secret").toString()).doesNotContain("hunter2");
  }

  @Test
  void tlsAndClientAuthAreCheckedWhenLoaded(@TempDir Path dir) throws IOException {
    Path cert = Files.writeString(dir.resolve("tls.crt"), "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n");
    Path key = Files.writeString(dir.resolve("tls.key"), "-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n");
    Path users = Files.writeString(dir.resolve("htpasswd"),
        "# comment\nalice:$2y$05$" + "a".repeat(53) + "\n\nbob:$2a$10$" + "B".repeat(53) + "\n");
    MirrorConfig c = ConfigLoader.parse("""
        tls:
          cert: %s
          key: %s
        auth:
          htpasswd: %s
        """.formatted(cert, key, users));
    assertThat(c.tls()).isEqualTo(new TlsConfig(cert, key));
    assertThat(c.htpasswd().hashes()).containsOnlyKeys("alice", "bob");
    assertThat(c.htpasswd().toString()).doesNotContain("$2");

    MirrorConfig fromEnv = ConfigLoader.load(null, Map.of(
        "MIRROR_TLS_CERT", cert.toString(), "MIRROR_TLS_KEY", key.toString(), "MIRROR_HTPASSWD", users.toString()));
    assertThat(fromEnv.tls()).isEqualTo(new TlsConfig(cert, key));
    assertThat(fromEnv.htpasswd().hashes()).hasSize(2);

    assertThatThrownBy(() -> ConfigLoader.parse("tls:\n  cert: " + cert + "\n"))
        .hasMessageContaining("tls.key");
    assertThatThrownBy(() -> ConfigLoader.parse("tls:\n  cert: " + key + "\n  key: " + key + "\n"))
        .hasMessageContaining("tls.cert");
    assertThatThrownBy(() -> ConfigLoader.parse("tls:\n  cert: " + cert + "\n  key: " + dir.resolve("nope") + "\n"))
        .hasMessageContaining("tls.key");
    assertThatThrownBy(() -> ConfigLoader.parse("tls:\n  certificate: x\n"))
        .hasMessageContaining("tls.certificate");
    Path md5 = Files.writeString(dir.resolve("md5"), "alice:$apr1$abcdefgh$0123456789012345678901\n");
    assertThatThrownBy(() -> ConfigLoader.parse("auth:\n  htpasswd: " + md5 + "\n"))
        .hasMessageContaining("auth.htpasswd").hasMessageContaining("line 1");
    assertThatThrownBy(() -> ConfigLoader.load(null, Map.of("MIRROR_HTPASSWD", dir.resolve("none").toString())))
        .hasMessageContaining("MIRROR_HTPASSWD");
  }

  @Test
  void tagTrackingSettings() {
    MirrorConfig c = ConfigLoader.parse("""
        upstreams:
          docker.io:
            url: https://registry-1.docker.io
            tagTtl: 10m
            refreshBudget: 30
        tags:
          refreshInterval: 15s
          refreshConcurrency: 2
          forgetAfter: 30d
          history: 12
          webhooks: [https://hooks.example/moves]
          rules:
            - tags: latest
              ttl: 30s
            - repositories: "library/*"
              tags: "*-dev"
              ttl: 0s
            - tags: "v*.*.*"
              ttl: 1d
            - repositories: "team/app"
              tags: prod
              pin: sha256:%s
        """.formatted("a".repeat(64)));
    TagsConfig tags = c.tags();
    UpstreamConfig hub = c.upstreams().get("docker.io");
    assertThat(hub.refreshBudget()).isEqualTo(30);
    assertThat(tags.refreshInterval()).isEqualTo(Duration.ofSeconds(15));
    assertThat(tags.refreshConcurrency()).isEqualTo(2);
    assertThat(tags.forgetAfter()).isEqualTo(Duration.ofDays(30));
    assertThat(tags.history()).isEqualTo(12);
    assertThat(tags.webhooks()).containsExactly(URI.create("https://hooks.example/moves"));
    assertThat(tags.ttl(hub, "library/nginx", "latest")).isEqualTo(Duration.ofSeconds(30));
    assertThat(tags.ttl(hub, "library/nginx", "main-dev")).isEqualTo(Duration.ZERO);
    assertThat(tags.ttl(hub, "team/app", "main-dev")).isEqualTo(Duration.ofMinutes(10));
    assertThat(tags.ttl(hub, "team/app", "v1.2.3")).isEqualTo(Duration.ofDays(1));
    assertThat(tags.pin("team/app", "prod").pinnedDigest().toString()).isEqualTo("sha256:" + "a".repeat(64));
    assertThat(tags.pin("team/app", "latest")).isNull();

    assertThatThrownBy(() -> ConfigLoader.parse("tags:\n  rules:\n    - tags: x\n"))
        .hasMessageContaining("tags.rules[0]");
    assertThatThrownBy(() -> ConfigLoader.parse("tags:\n  rules:\n    - {tags: x, pin: maybe}\n"))
        .hasMessageContaining("tags.rules[0].pin");
    assertThatThrownBy(() -> ConfigLoader.parse("tags:\n  rules:\n    - {tags: x, warm: [amd64]}\n"))
        .hasMessageContaining("tags.rules[0].warm[0]");
    assertThat(ConfigLoader.parse("tags:\n  rules:\n    - {tags: x, warm: [linux/arm64/v8, linux/amd64]}\n")
        .tags().warm("any/repo", "x")).containsExactly("linux/arm64/v8", "linux/amd64");
    assertThatThrownBy(() -> ConfigLoader.parse("tags:\n  webhooks: [ftp://x]\n"))
        .hasMessageContaining("tags.webhooks[0]");
    assertThatThrownBy(() -> ConfigLoader.parse("tags:\n  history: 0\n"))
        .hasMessageContaining("tags.history");
  }
}
