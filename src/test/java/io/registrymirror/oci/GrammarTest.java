package io.registrymirror.oci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class GrammarTest {

  private static final String HEX64 = "a".repeat(64);

  @ParameterizedTest
  @ValueSource(strings = {"alpine", "library/alpine", "a/b/c/d", "my-app", "my--app", "my_app",
      "my__app", "a.b", "ghcr.io/owner/repo", "x/manifests", "blobs/blobs", "0"})
  void acceptsNames(String name) {
    assertThat(RepositoryName.valid(name)).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "Alpine", "a//b", "/a", "a/", "a/../b", "..", "a/./b", "a___b",
      "a..b", "-a", "a-", "_catalog", "a%2fb", "a%2e%2e", "a b", "a:b", "localhost:5000/x",
      "a\u00e9"})
  void rejectsNames(String name) {
    assertThat(RepositoryName.valid(name)).isFalse();
  }

  @Test
  void capsNameLength() {
    assertThat(RepositoryName.valid("a".repeat(255))).isTrue();
    assertThat(RepositoryName.valid("a".repeat(256))).isFalse();
  }

  @ParameterizedTest
  @ValueSource(strings = {"latest", "1.0", "v1.2.3-rc.1", "_x", "A_b-C.d"})
  void acceptsTags(String tag) {
    assertThat(Reference.parse(tag)).isEqualTo(new Reference.Tag(tag));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", ".x", "-x", "a/b", "a b", "a%20b"})
  void rejectsTags(String tag) {
    assertThatThrownBy(() -> Reference.parse(tag)).isInstanceOf(IllegalArgumentException.class);
    assertThat(Reference.validTag("x".repeat(128))).isTrue();
    assertThat(Reference.validTag("x".repeat(129))).isFalse();
  }

  @Test
  void parsesDigests() {
    Digest d = Digest.parse("sha256:" + HEX64);
    assertThat(d.algorithm()).isEqualTo(Digest.Algorithm.SHA256);
    assertThat(d.toString()).isEqualTo("sha256:" + HEX64);
    assertThat(Digest.parse("sha512:" + "b".repeat(128)).algorithm()).isEqualTo(Digest.Algorithm.SHA512);
    assertThat(Reference.parse("sha256:" + HEX64)).isEqualTo(new Reference.ByDigest(d));
  }

  @ParameterizedTest
  @ValueSource(strings = {"sha256:" + "A", "sha256:abc", "sha256", "sha256:", ":abc", "md5:abc",
      "sha256:" + "g" + "a", "SHA256:aaaa", "sha256:" + "a" + "a"})
  void rejectsDigests(String s) {
    assertThatThrownBy(() -> Digest.parse(s)).isInstanceOf(IllegalArgumentException.class);
    assertThat(Digest.parseOrNull(s)).isNull();
  }

  @Test
  void rejectsUppercaseHexAndWrongLength() {
    assertThatThrownBy(() -> Digest.parse("sha256:" + "A".repeat(64))).hasMessageContaining("lowercase hex");
    assertThatThrownBy(() -> Digest.parse("sha256:" + "a".repeat(63))).hasMessageContaining("64");
    assertThatThrownBy(() -> Digest.parse("blake3:" + "a".repeat(64))).hasMessageContaining("unsupported");
  }

  @Test
  void hashesContent() {
    Digest empty = Digest.sha256(new byte[0]);
    assertThat(empty.toString())
        .isEqualTo("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assertThat(empty.matches(new byte[0])).isTrue();
    assertThat(empty.matches(new byte[1])).isFalse();
  }
}
