package io.registrymirror.oci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

class ManifestLinksTest {

  private static final String A = "sha256:" + "a".repeat(64);
  private static final String B = "sha256:" + "b".repeat(64);
  private static final String C = "sha256:" + "c".repeat(64);

  @Test
  void anIndexListsItsManifestsWithTheirPlatforms() {
    ManifestLinks links = ManifestLinks.of(manifest("""
        {"schemaVersion":2,"manifests":[
          {"digest":"%s","platform":{"os":"linux","architecture":"amd64"}},
          {"digest":"%s","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
          {"digest":"%s"}]}""".formatted(A, B, C)));
    assertThat(links.children()).extracting(ManifestLinks.Child::platform)
        .containsExactly("linux/amd64", "linux/arm/v7", "");
    assertThat(links.children(java.util.List.of("linux/arm/v7"))).containsExactly(Digest.parse(B));
    assertThat(links.children(java.util.List.of())).hasSize(3);
    assertThat(links.blobs()).isEmpty();
  }

  @Test
  void anImageListsItsConfigThenItsLayers() {
    ManifestLinks links = ManifestLinks.of(manifest("""
        {"schemaVersion":2,"config":{"digest":"%s"},"layers":[{"digest":"%s"},{"digest":"%s"}]}"""
        .formatted(A, B, C)));
    assertThat(links.children()).isEmpty();
    assertThat(links.blobs()).containsExactly(Digest.parse(A), Digest.parse(B), Digest.parse(C));
  }

  @Test
  void aLinkThatIsNoDigestIsRefused() {
    assertThatThrownBy(() -> ManifestLinks.of(manifest("{\"layers\":[{\"digest\":\"../../etc\"}]}")))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ManifestLinks.of(manifest("[1]"))).isInstanceOf(IllegalArgumentException.class);
  }

  private static Manifest manifest(String json) {
    Buffer body = Buffer.buffer(json);
    return new Manifest(Manifest.hash(Digest.Algorithm.SHA256, body), MediaTypes.OCI_INDEX, body);
  }
}
