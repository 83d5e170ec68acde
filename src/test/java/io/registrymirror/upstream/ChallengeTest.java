package io.registrymirror.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ChallengeTest {

  @Test
  void parsesDockerHubsChallenge() {
    Challenge c = Challenge.parse("Bearer realm=\"https://auth.docker.io/token\","
        + "service=\"registry.docker.io\",scope=\"repository:samalba/my-app:pull,push\"");
    assertThat(c.isBearer()).isTrue();
    assertThat(c.param("realm")).isEqualTo("https://auth.docker.io/token");
    assertThat(c.param("service")).isEqualTo("registry.docker.io");
    assertThat(c.param("scope")).isEqualTo("repository:samalba/my-app:pull,push");
  }

  @Test
  void toleratesSpacingUnquotedValuesAndEscapes() {
    Challenge c = Challenge.parse("bearer  realm=https://r.example/t , service=\"a\\\"b\", error=\"insufficient_scope\"");
    assertThat(c.isBearer()).isTrue();
    assertThat(c.param("realm")).isEqualTo("https://r.example/t");
    assertThat(c.param("service")).isEqualTo("a\"b");
    assertThat(c.param("error")).isEqualTo("insufficient_scope");
  }

  @Test
  void basicIsNotBearer() {
    assertThat(Challenge.parse("Basic realm=\"registry\"").isBearer()).isFalse();
    assertThat(Challenge.parse(null)).isNull();
  }
}
