package io.registrymirror.it;

import io.registrymirror.testing.ReferenceRegistry;
import io.registrymirror.testing.Required;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * A real reference registry for the test class, as the upstream: started before the
 * subclass's own {@code @BeforeAll} (which seeds it), stopped after the class.
 */
abstract class RegistryTestBase {

  protected static ReferenceRegistry registry;

  @BeforeAll
  static void startRegistry() throws Exception {
    Required.referenceRegistry();
    registry = ReferenceRegistry.start();
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
      registry = null;
    }
  }
}
