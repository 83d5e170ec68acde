package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The keys that say where an upstream may send the mirror and its credentials, and the password file. */
class UpstreamKeysTest {

  @Test
  void defaultsCoverDockerHubsTokenServiceOnly() {
    MirrorConfig c = ConfigLoader.parse("""
        upstreams:
          docker.io:
            url: https://registry-1.docker.io
          ghcr.io:
            url: https://ghcr.io
        """);
    UpstreamConfig hub = c.upstreams().get("docker.io");
    assertThat(hub.tokenRealms()).containsExactly(URI.create("https://auth.docker.io"));
    assertThat(hub.allowPrivateHosts()).isEmpty();
    assertThat(hub.passwordFile()).isNull();
    assertThat(hub.passwordFileCheck()).isEqualTo(Duration.ofSeconds(10));
    assertThat(c.upstreams().get("ghcr.io").tokenRealms()).isEmpty();
    assertThat(MirrorConfig.defaults().upstreams().get("docker.io").tokenRealms())
        .containsExactly(URI.create("https://auth.docker.io"));
  }

  @Test
  void keysAreReadAndHostsCompareWithoutCase() {
    UpstreamConfig u = ConfigLoader.parse("""
        upstreams:
          registry.gitlab.com:
            url: https://registry.gitlab.com
            tokenRealms: [https://gitlab.com, "https://auth.example:8443"]
            allowPrivateHosts: [MinIO.lan, 10.0.0.5, "[fd00::1]"]
        """).upstreams().get("registry.gitlab.com");
    assertThat(u.tokenRealms()).containsExactly(URI.create("https://gitlab.com"), URI.create("https://auth.example:8443"));
    assertThat(u.allowPrivateHosts()).containsExactly("minio.lan", "10.0.0.5", "[fd00::1]");
  }

  @Test
  void badValuesNameTheirKey() {
    assertRefused("tokenRealms: [http://auth.example]", "upstreams.r.tokenRealms[0]: must be an https:// origin");
    assertRefused("tokenRealms: [https://auth.example/token]", "upstreams.r.tokenRealms[0]: must be the registry root");
    assertRefused("tokenRealms: https://auth.example", "upstreams.r.tokenRealms: must be a list of origins");
    assertRefused("allowPrivateHosts: [\"http://x\"]", "upstreams.r.allowPrivateHosts[0]: not a host name");
    assertRefused("passwordFileCheck: 0s", "upstreams.r.passwordFileCheck: must be more than zero");
  }

  @Test
  void thePasswordFileIsKeptToBeWatched(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("password"), "from-file\n");
    Path other = Files.writeString(dir.resolve("other"), "from-env-file\n");
    Path yaml = Files.writeString(dir.resolve("m.yaml"), """
        upstreams:
          r:
            url: https://r.example
            username: bot
            passwordFile: %s
            passwordFileCheck: 2s
        """.formatted(file));
    UpstreamConfig fromFile = ConfigLoader.load(yaml, Map.of()).upstreams().get("r");
    assertThat(fromFile.credentials().password()).isEqualTo("from-file");
    assertThat(fromFile.passwordFile()).isEqualTo(file);
    assertThat(fromFile.passwordFileCheck()).isEqualTo(Duration.ofSeconds(2));

    UpstreamConfig envFile = ConfigLoader.load(yaml, Map.of("MIRROR_UPSTREAM_R_PASSWORD_FILE", other.toString()))
        .upstreams().get("r");
    assertThat(envFile.credentials().password()).isEqualTo("from-env-file");
    assertThat(envFile.passwordFile()).isEqualTo(other);

    // A password given outright replaces the file: there is nothing to watch.
    UpstreamConfig envPassword = ConfigLoader.load(yaml, Map.of("MIRROR_UPSTREAM_R_PASSWORD", "inline"))
        .upstreams().get("r");
    assertThat(envPassword.credentials().password()).isEqualTo("inline");
    assertThat(envPassword.passwordFile()).isNull();
    assertThat(List.of(fromFile, envFile, envPassword)).allSatisfy(u -> assertThat(u.credentials().username()).isEqualTo("bot"));
  }

  private static void assertRefused(String line, String message) {
    assertThatThrownBy(() -> ConfigLoader.parse("""
        upstreams:
          r:
            url: https://r.example
            %s
        """.formatted(line)))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith(message);
  }
}
