package io.registrymirror.testing;

import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What an end-to-end test needs of the machine: a tool, root, a kind of mount. When it is
 * missing the test fails, naming the Debian package or the privilege, so that a run that
 * looks green has run everything; {@code -Dquick} (a developer's quick run) makes such tests
 * skip instead.
 */
public final class Required {

  /** The system property that turns a missing tool into a skip. */
  public static final String QUICK = "quick";

  private Required() {}

  /** {@code present}, or the test cannot run without the Debian package {@code debianPackage}. */
  public static void tool(boolean present, String what, String debianPackage) {
    that(present, what + " is not installed: apt-get install " + debianPackage);
  }

  public static void referenceRegistry() {
    tool(ReferenceRegistry.available(), "the reference registry (docker-registry)", "docker-registry");
  }

  public static void skopeo() {
    tool(java.nio.file.Files.isExecutable(java.nio.file.Path.of("/usr/bin/skopeo")), "skopeo", "skopeo");
  }

  public static void strace() {
    tool(StraceLog.available(), "strace", "strace");
  }

  public static void dockerd() {
    tool(Dockerd.available(), "dockerd and docker", "docker.io");
  }

  public static void containerd() {
    tool(Containerd.available(), "containerd and ctr", "containerd");
  }

  public static void podman() {
    tool(Podman.available(), "podman", "podman");
  }

  public static void root(String why) {
    that("root".equals(System.getProperty("user.name")), why + " needs root");
  }

  /** {@code holds}, or the test cannot run here, for the reason {@code why}. */
  public static void that(boolean holds, String why) {
    if (holds) {
      return;
    }
    if (quick()) {
      assumeTrue(false, why + " (skipped: quick run)");
    }
    fail(why + ". Every end-to-end test runs unless you ask for a quick run with -D" + QUICK);
  }

  private static boolean quick() {
    String value = System.getProperty(QUICK);
    return value != null && !value.equals("false");
  }
}
