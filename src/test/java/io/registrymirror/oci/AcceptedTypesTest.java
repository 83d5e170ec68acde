package io.registrymirror.oci;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class AcceptedTypesTest {

  @Test
  void mergesEveryHeaderLine() {
    // Docker sends one Accept line per type: all of them count, not just the first.
    AcceptedTypes accept = AcceptedTypes.parse(List.of(
        MediaTypes.DOCKER_SCHEMA1_SIGNED, MediaTypes.DOCKER_MANIFEST, MediaTypes.OCI_INDEX));
    assertThat(accept.accepts(MediaTypes.DOCKER_MANIFEST)).isTrue();
    assertThat(accept.accepts(MediaTypes.OCI_INDEX)).isTrue();
    assertThat(accept.accepts(MediaTypes.OCI_MANIFEST)).isFalse();
    assertThat(accept.upstreamHeader())
        .isEqualTo(MediaTypes.DOCKER_MANIFEST + ", " + MediaTypes.OCI_INDEX);
  }

  @Test
  void splitsCommaJoinedLinesAndHonoursWildcards() {
    AcceptedTypes accept = AcceptedTypes.parse(List.of(
        MediaTypes.DOCKER_MANIFEST + ", " + MediaTypes.DOCKER_MANIFEST_LIST + ", */*"));
    assertThat(accept.accepts("application/vnd.example.anything+json")).isTrue();
    assertThat(accept.upstreamHeader()).startsWith(MediaTypes.DOCKER_MANIFEST + ", "
        + MediaTypes.DOCKER_MANIFEST_LIST).contains(MediaTypes.OCI_INDEX, MediaTypes.OCI_MANIFEST);
  }

  @Test
  void noAcceptMeansAnythingButNeverSchema1Upstream() {
    AcceptedTypes accept = AcceptedTypes.parse(List.of());
    assertThat(accept.accepts(MediaTypes.OCI_MANIFEST)).isTrue();
    assertThat(accept.upstreamHeader()).doesNotContain(MediaTypes.DOCKER_SCHEMA1, MediaTypes.DOCKER_SCHEMA1_SIGNED);
    AcceptedTypes onlyV1 = AcceptedTypes.parse(List.of(MediaTypes.DOCKER_SCHEMA1));
    assertThat(onlyV1.upstreamHeader()).doesNotContain(MediaTypes.DOCKER_SCHEMA1).contains(MediaTypes.DOCKER_MANIFEST);
  }

  @Test
  void ignoresParametersAndRefusals() {
    AcceptedTypes accept = AcceptedTypes.parse(List.of(
        MediaTypes.OCI_MANIFEST + "; q=0.5", MediaTypes.OCI_INDEX + ";q=0"));
    assertThat(accept.accepts(MediaTypes.OCI_MANIFEST)).isTrue();
    assertThat(accept.accepts(MediaTypes.OCI_INDEX)).isFalse();
  }

  @Test
  void digestRequestsAcceptEveryModernType() {
    AcceptedTypes accept = AcceptedTypes.parse(List.of(MediaTypes.DOCKER_MANIFEST));
    assertThat(accept.upstreamHeaderForDigest()).contains(MediaTypes.DOCKER_MANIFEST,
        MediaTypes.OCI_MANIFEST, MediaTypes.OCI_INDEX, MediaTypes.DOCKER_MANIFEST_LIST);
  }
}
