package io.registrymirror.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.oci.Endpoint;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ApiPathTest {

  @ParameterizedTest
  @CsvSource({
      "/v2/alpine/manifests/latest, MANIFEST, alpine, latest",
      "/v2/library/alpine/blobs/sha256:x, BLOB, library/alpine, sha256:x",
      "/v2/a/manifests/manifests/1.0, MANIFEST, a/manifests, 1.0",
      "/v2/blobs/blobs/blobs/d, BLOB, blobs/blobs, d",
      "/v2/ghcr.io/o/r/referrers/sha256:x, REFERRERS, ghcr.io/o/r, sha256:x",
      "/v2/a/b/tags/list, TAGS, a/b, ",
      "/v2/tags/tags/list, TAGS, tags, "})
  void readsFromTheRight(String path, Endpoint endpoint, String name, String reference) {
    ApiPath p = ApiPath.parse(path);
    assertThat(p.endpoint()).isEqualTo(endpoint);
    assertThat(p.name().value()).isEqualTo(name);
    assertThat(p.reference()).isEqualTo(reference);
  }

  @ParameterizedTest
  @CsvSource({
      "/v2/A/manifests/latest, NAME_INVALID",
      "/v2/a/../b/manifests/latest, NAME_INVALID",
      "/v2/a/%2e%2e/manifests/latest, NAME_INVALID",
      "/v2/a%2Fb/manifests/latest, NAME_INVALID",
      "/v2//manifests/latest, NAME_UNKNOWN",
      "/v2/a//b/blobs/sha256:x, NAME_INVALID",
      "/v2/a/uploads/x, NAME_UNKNOWN",
      "/v2/_catalog, NAME_UNKNOWN",
      "/v2/a/manifests, NAME_UNKNOWN"})
  void rejects(String path, OciError error) {
    assertThatThrownBy(() -> ApiPath.parse(path))
        .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.error()).isEqualTo(error));
  }
}
