package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.RegistryMirror;
import io.registrymirror.config.ConfigException;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.MirrorConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Start-up errors that YAML validation cannot catch still say which key is at fault and why,
 * as the process prints them: an operator reads one line and knows what to change.
 */
@ExtendWith(VertxExtension.class)
class StartupErrorsTest {

  @Test
  void aDurationTooLongForAClockNamesItsKey() {
    for (String ttl : new String[] {"9999999999999999d", "99999999999999999999999s", "36501d"}) {
      assertThatThrownBy(() -> ConfigLoader.parse(yaml("127.0.0.1:0", "cache", "tagTtl: " + ttl)))
          .isInstanceOf(ConfigException.class)
          .hasMessageContaining("upstreams.local.tagTtl")
          .hasMessageContaining("at most 36500d");
    }
    // A hundred years is as good as never, and accepted.
    assertThat(ConfigLoader.parse(yaml("127.0.0.1:0", "cache", "tagTtl: 36500d"))
        .upstreams().get("local").tagTtl().toDays()).isEqualTo(36_500);
  }

  @Test
  void aSizeTooLargeToCountInBytesNamesItsKey() {
    assertThatThrownBy(() -> ConfigLoader.parse(yaml("127.0.0.1:0", "cache", "minRate: 999999999999GiB")))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("upstreams.local.minRate: too large");
  }

  @Test
  void aCacheDirThatIsAFileNamesTheKeyAndTheReason(Vertx vertx, @TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("not-a-dir"), "x");
    Throwable failure = startFailure(vertx, yaml("127.0.0.1:0", file.toString(), ""));
    assertThat(failure).isInstanceOf(ConfigException.class);
    assertThat(failure.getMessage()).startsWith("cache.dir: " + file).containsIgnoringCase("not a directory");
  }

  @Test
  void aPortInUseNamesListenAndTheAddress(Vertx vertx) throws Exception {
    HttpServer taken = vertx.createHttpServer().requestHandler(r -> r.response().end())
        .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    int port = taken.actualPort();
    Path cache = Files.createTempDirectory("startup-errors");
    Throwable failure = startFailure(vertx, yaml("127.0.0.1:" + port, cache.toString(), ""));
    assertThat(failure).isInstanceOf(ConfigException.class);
    assertThat(failure.getMessage()).startsWith("listen: ").contains("127.0.0.1:" + port)
        .containsIgnoringCase("address already in use");
  }

  private static Throwable startFailure(Vertx vertx, String yaml) throws Exception {
    MirrorConfig config = ConfigLoader.parse(yaml);
    Future<RegistryMirror> started = RegistryMirror.start(vertx, config);
    try {
      RegistryMirror mirror = started.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      mirror.close();
      throw new AssertionError("the mirror started");
    } catch (java.util.concurrent.ExecutionException e) {
      return e.getCause();
    }
  }

  private static String yaml(String listen, String cacheDir, String upstreamExtra) {
    return """
        listen: %s
        cache:
          dir: %s
        upstreams:
          local:
            url: http://127.0.0.1:1
            %s
        """.formatted(listen, cacheDir, upstreamExtra);
  }
}
