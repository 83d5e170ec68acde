package io.registrymirror.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The {@code s3} section and its environment variables, with an error naming the key for each mistake. */
class S3ConfigTest {

  @Test
  void absentMeansNoTier() {
    assertThat(ConfigLoader.load(null, Map.of()).s3()).isNull();
  }

  @Test
  void readsEveryKey() {
    S3Config c = ConfigLoader.parse("""
        s3:
          endpoint: http://127.0.0.1:9000
          bucket: registry-mirror
          region: eu-west-1
          pathStyle: true
        """).s3();
    assertThat(c).isEqualTo(new S3Config(URI.create("http://127.0.0.1:9000"), "registry-mirror", "eu-west-1", true));
    assertThat(ConfigLoader.parse("s3: {bucket: b-1}").s3()).isEqualTo(new S3Config(null, "b-1", null, false));
  }

  @Test
  void theEnvironmentTurnsItOnOrOverridesTheFile() {
    MirrorConfig fromEnv = ConfigLoader.applyEnv(ConfigLoader.parse("listen: 0.0.0.0:5000"), Map.of(
        "MIRROR_S3_BUCKET", "from-secret", "MIRROR_S3_ENDPOINT", "https://s3.example.com",
        "MIRROR_S3_PATH_STYLE", "true"));
    assertThat(fromEnv.s3()).isEqualTo(new S3Config(URI.create("https://s3.example.com"), "from-secret", null, true));
    MirrorConfig over = ConfigLoader.applyEnv(ConfigLoader.parse("s3: {bucket: in-file, region: us-east-2}"),
        Map.of("MIRROR_S3_REGION", "eu-central-1"));
    assertThat(over.s3()).isEqualTo(new S3Config(null, "in-file", "eu-central-1", false));
    assertThatThrownBy(() -> ConfigLoader.applyEnv(ConfigLoader.parse("listen: 0.0.0.0:5000"),
        Map.of("MIRROR_S3_ENDPOINT", "http://127.0.0.1:9000")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("MIRROR_S3_BUCKET: ");
    assertThatThrownBy(() -> ConfigLoader.applyEnv(ConfigLoader.parse("listen: 0.0.0.0:5000"),
        Map.of("MIRROR_S3_BUCKET", "Not_A_Bucket")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("MIRROR_S3_BUCKET: ");
  }

  @Test
  void mistakesNameTheirKey() {
    assertError("s3: {}", "s3.bucket: ");
    assertError("s3: {bucket: ab}", "s3.bucket: ");
    assertError("s3: {bucket: UPPER}", "s3.bucket: ");
    assertError("s3: {bucket: ok-bucket, endpoint: 'ftp://host'}", "s3.endpoint: ");
    assertError("s3: {bucket: ok-bucket, endpoint: 'http://user:pw@host'}", "s3.endpoint: ");
    assertError("s3: {bucket: ok-bucket, region: 'Not A Region'}", "s3.region: ");
    assertError("s3: {bucket: ok-bucket, pathStyle: maybe}", "s3.pathStyle: ");
    assertError("s3: {bucket: ok-bucket, acl: public}", "s3.acl");
  }

  private static void assertError(String yaml, String message) {
    assertThatThrownBy(() -> ConfigLoader.parse(yaml))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith(message);
  }
}
