package io.registrymirror.oci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Image references as docker, podman and crane users write them. */
class ImageReferenceTest {

  private static final String DIGEST = "sha256:" + "ab".repeat(32);

  @Test
  void readsWhatClientsWrite() {
    assertThat(ImageReference.parse("docker.io/library/nginx:1.27"))
        .isEqualTo(new ImageReference("docker.io", new RepositoryName("library/nginx"), new Reference.Tag("1.27")));
    assertThat(ImageReference.parse("nginx"))
        .isEqualTo(new ImageReference(null, new RepositoryName("nginx"), new Reference.Tag("latest")));
    assertThat(ImageReference.parse("owner/app:v2"))
        .isEqualTo(new ImageReference(null, new RepositoryName("owner/app"), new Reference.Tag("v2")));
    assertThat(ImageReference.parse("registry.example:5000/team/app:1"))
        .isEqualTo(new ImageReference("registry.example:5000", new RepositoryName("team/app"), new Reference.Tag("1")));
    assertThat(ImageReference.parse("localhost/app"))
        .isEqualTo(new ImageReference("localhost", new RepositoryName("app"), new Reference.Tag("latest")));
    Reference byDigest = new Reference.ByDigest(Digest.parse(DIGEST));
    assertThat(ImageReference.parse("ghcr.io/owner/app@" + DIGEST))
        .isEqualTo(new ImageReference("ghcr.io", new RepositoryName("owner/app"), byDigest));
    // Both: the digest names the content.
    assertThat(ImageReference.parse("ghcr.io/owner/app:1.0@" + DIGEST).reference()).isEqualTo(byDigest);
    assertThat(ImageReference.parse("registry.example:5000/team/app:1")).hasToString("registry.example:5000/team/app:1");
  }

  @Test
  void refusesWhatIsNoImageSayingWhy() {
    assertThatThrownBy(() -> ImageReference.parse("")).hasMessageContaining("empty");
    assertThatThrownBy(() -> ImageReference.parse("Nginx")).hasMessageContaining("invalid repository name 'Nginx'");
    assertThatThrownBy(() -> ImageReference.parse("nginx:")).hasMessageContaining("invalid tag ''");
    assertThatThrownBy(() -> ImageReference.parse("nginx:.x")).hasMessageContaining("invalid tag '.x'");
    assertThatThrownBy(() -> ImageReference.parse("nginx@sha256:12")).hasMessageContaining("invalid digest");
    assertThatThrownBy(() -> ImageReference.parse("https://docker.io/nginx")).hasMessageContaining("no scheme");
    assertThatThrownBy(() -> ImageReference.parse(" nginx")).hasMessageContaining("invalid repository name");
    assertThatThrownBy(() -> ImageReference.parse("docker.io/")).hasMessageContaining("invalid repository name");
    assertThatThrownBy(() -> ImageReference.parse("a".repeat(600))).hasMessageContaining("longer than");
  }
}
