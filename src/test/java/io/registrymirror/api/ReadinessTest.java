package io.registrymirror.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.metrics.MeterRegistries;
import io.registrymirror.proxy.CacheHealth;
import io.registrymirror.store.CacheLayout;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code /readyz} keeps a new pod out of rotation until its cache index is read. */
class ReadinessTest {

  @TempDir
  Path cache;

  private Vertx vertx;
  private CacheHealth health;
  private HttpServer server;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    CacheLayout layout = new CacheLayout(cache);
    Files.createDirectories(layout.tmp());
    health = new CacheHealth(vertx, layout);
    OpsHandler ops = new OpsHandler(vertx, MeterRegistries.prometheusRegistry(), health);
    Router router = Router.router(vertx);
    router.get("/readyz").handler(ops::ready);
    server = vertx.createHttpServer().requestHandler(router).listen(0, "127.0.0.1")
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void notReadyWhileTheIndexIsReadThenReady() throws Exception {
    HttpResponse<String> loading = readyz();
    assertThat(loading.statusCode()).isEqualTo(503);
    assertThat(new JsonObject(loading.body()).getString("status")).isEqualTo("loading");

    health.indexDone();
    HttpResponse<String> ready = readyz();
    assertThat(ready.statusCode()).isEqualTo(200);
    JsonObject body = new JsonObject(ready.body());
    assertThat(body.getString("status")).isEqualTo("ok");
    assertThat(body.getBoolean("cacheWritable")).isTrue();
  }

  private HttpResponse<String> readyz() throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + server.actualPort() + "/readyz")).build(), HttpResponse.BodyHandlers.ofString());
  }
}
