package io.registrymirror.testing;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

class RequiredTest {

  private final String quick = System.getProperty(Required.QUICK);

  @AfterEach
  void restore() {
    if (quick == null) {
      System.clearProperty(Required.QUICK);
    } else {
      System.setProperty(Required.QUICK, quick);
    }
  }

  @Test
  void aMissingToolFailsTheTestNamingItsPackage() {
    System.clearProperty(Required.QUICK);
    assertThatThrownBy(() -> Required.tool(false, "skopeo", "skopeo"))
        .isInstanceOf(AssertionError.class)
        .hasMessageContaining("apt-get install skopeo")
        .hasMessageContaining("-Dquick");
  }

  @Test
  void aQuickRunSkipsInstead() {
    System.setProperty(Required.QUICK, "");
    assertThatThrownBy(() -> Required.tool(false, "podman", "podman"))
        .isInstanceOf(TestAbortedException.class)
        .hasMessageContaining("apt-get install podman");
  }

  @Test
  void aPresentToolIsNoMatter() {
    System.clearProperty(Required.QUICK);
    Required.tool(true, "strace", "strace");
  }
}
