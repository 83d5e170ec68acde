package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.config.LogConfig.Format;
import io.registrymirror.config.LogConfig.Level;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The {@code log} section and {@code shutdownGrace}: their defaults, the environment, and errors naming the key. */
class LogConfigTest {

  @Test
  void defaultsAreTextAtInfoWithAnAccessLogAndTwentySecondsOfGrace() {
    MirrorConfig c = ConfigLoader.load(null, Map.of());
    assertThat(c.log()).isEqualTo(new LogConfig(Format.TEXT, Level.INFO, true));
    assertThat(c.shutdownGrace()).isEqualTo(Duration.ofSeconds(20));
    // The documented file shows the defaults.
    MirrorConfig documented = ConfigLoader.load(Path.of("conf/registry-mirror.yaml"), Map.of());
    assertThat(documented.log()).isEqualTo(c.log());
    assertThat(documented.shutdownGrace()).isEqualTo(c.shutdownGrace());
  }

  @Test
  void readsEveryKey() {
    MirrorConfig c = ConfigLoader.parse("""
        shutdownGrace: 5s
        log:
          format: json
          level: debug
          access: false
        """);
    assertThat(c.log()).isEqualTo(new LogConfig(Format.JSON, Level.DEBUG, false));
    assertThat(c.shutdownGrace()).isEqualTo(Duration.ofSeconds(5));
    assertThat(ConfigLoader.parse("log: {level: WARN}").log().level()).isEqualTo(Level.WARN);
    // A section with some keys keeps the others' defaults.
    assertThat(ConfigLoader.parse("log: {level: error}").log()).isEqualTo(new LogConfig(Format.TEXT, Level.ERROR, true));
  }

  @Test
  void environmentOverridesFormatAndLevel() {
    MirrorConfig file = ConfigLoader.parse("log: {format: text, level: warn, access: false}");
    MirrorConfig c = ConfigLoader.applyEnv(file, Map.of("MIRROR_LOG_FORMAT", "json", "MIRROR_LOG_LEVEL", "DEBUG"));
    assertThat(c.log()).isEqualTo(new LogConfig(Format.JSON, Level.DEBUG, false));
    assertThat(ConfigLoader.applyEnv(file, Map.of("MIRROR_LOG_LEVEL", " ")).log()).isEqualTo(file.log());
  }

  @Test
  void errorsNameTheKey() {
    assertError("log: {format: xml}", "log.format: not one of text, json: 'xml'");
    assertError("log: {level: verbose}", "log.level: not one of error, warn, info, debug: 'verbose'");
    assertError("log: {level: [info]}", "log.level: must be a single value");
    assertError("log: {access: maybe}", "log.access: must be true or false");
    assertError("log: {file: /var/log/m}", "log.file: unknown key");
    assertError("log: json", "log: must be a mapping");
    assertError("shutdownGrace: soon", "shutdownGrace: not a duration");
    assertError("shutdownGrace: 0s", "shutdownGrace: must be more than zero");
    assertThatThrownBy(() -> ConfigLoader.applyEnv(MirrorConfig.defaults(), Map.of("MIRROR_LOG_LEVEL", "trace")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("MIRROR_LOG_LEVEL: not one of error, warn, info, debug: 'trace'");
    assertThatThrownBy(() -> ConfigLoader.applyEnv(MirrorConfig.defaults(), Map.of("MIRROR_LOG_FORMAT", "logfmt")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("MIRROR_LOG_FORMAT: not one of text, json");
  }

  private static void assertError(String yaml, String message) {
    assertThatThrownBy(() -> ConfigLoader.parse(yaml)).isInstanceOf(ConfigException.class).hasMessageContaining(message);
  }
}
