package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The listener's limits: read, defaulted and validated with messages naming the key. */
class LimitsConfigTest {

  @Test
  void theShippedFileShowsTheDefaults() {
    assertThat(ConfigLoader.load(Path.of("conf/registry-mirror.yaml"), Map.of()).limits())
        .isEqualTo(LimitsConfig.defaults());
    assertThat(ConfigLoader.parse("listen: 127.0.0.1:5000").limits()).isEqualTo(LimitsConfig.defaults());
  }

  @Test
  void keysAreRead() {
    LimitsConfig limits = ConfigLoader.parse("""
        limits:
          headerTimeout: 3s
          connections: 100
          connectionsPerClient: 10
          loginFailures: 3
          loginFailureWindow: 5m
          sendTimeout: 2m
        """).limits();
    assertThat(limits).isEqualTo(new LimitsConfig(Duration.ofSeconds(3), 100, 10, 3, Duration.ofMinutes(5),
        Duration.ofMinutes(2)));
  }

  @Test
  void badValuesNameTheirKey() {
    assertThatThrownBy(() -> ConfigLoader.parse("limits:\n  headerTimeout: 0s\n"))
        .hasMessageStartingWith("limits.headerTimeout: must be more than zero");
    assertThatThrownBy(() -> ConfigLoader.parse("limits:\n  sendTimeout: 0s\n"))
        .hasMessageStartingWith("limits.sendTimeout: must be more than zero");
    assertThatThrownBy(() -> ConfigLoader.parse("limits:\n  connections: 0\n"))
        .hasMessageStartingWith("limits.connections: must be a whole number of at least 1");
    assertThatThrownBy(() -> ConfigLoader.parse("limits:\n  connections: 10\n  connectionsPerClient: 11\n"))
        .hasMessageStartingWith("limits.connectionsPerClient: must not be more than limits.connections");
    assertThatThrownBy(() -> ConfigLoader.parse("limits:\n  bodyTimeout: 5s\n"))
        .hasMessageStartingWith("limits.bodyTimeout: unknown key");
  }
}
