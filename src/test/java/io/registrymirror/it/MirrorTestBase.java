package io.registrymirror.it;


import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.MirrorUnderTest;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The setting of every integration test: a real reference registry for the test class (seeded by
 * the subclass in its own {@code @BeforeAll}), and for each test a counting forwarder in front
 * of it and a fresh mirror with an empty cache in front of that.
 */
@ExtendWith(VertxExtension.class)
abstract class MirrorTestBase extends RegistryTestBase {

  protected Forwarder upstream;
  protected MirrorUnderTest mirror;

  @BeforeEach
  void startMirror(Vertx vertx, @TempDir Path cache) {
    upstream = Forwarder.start(registry.port());
    mirror = MirrorUnderTest.start(vertx, "local", upstreamUrl(), cache, upstreamYaml());
  }

  /** The URL the mirror knows its upstream by: the forwarder, unless a test puts something in front. */
  protected String upstreamUrl() {
    return upstream.url();
  }

  @AfterEach
  void stopMirror() {
    mirror.close();
    upstream.close();
  }

  /** Extra keys for the upstream's configuration. */
  protected String upstreamYaml() {
    return "";
  }
}
