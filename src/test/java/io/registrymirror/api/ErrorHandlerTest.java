package io.registrymirror.api;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.registrymirror.error.OciError;
import io.registrymirror.metrics.MirrorMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The OCI error JSON as a client receives it, for every error code: the code's status, a body of
 * exactly {@code {"errors":[{"code","message","detail"}]}}, JSON content type, the headers an
 * error carries, and no body on a HEAD. The answers come from the one failure handler, behind a
 * real router and server.
 */
class ErrorHandlerTest {

  /** The spec's codes and their statuses, written out here rather than taken from the code. */
  private static final Map<String, Integer> STATUSES = Map.ofEntries(
      Map.entry("BLOB_UNKNOWN", 404), Map.entry("DIGEST_INVALID", 400),
      Map.entry("MANIFEST_INVALID", 400), Map.entry("MANIFEST_UNKNOWN", 404),
      Map.entry("NAME_INVALID", 400), Map.entry("NAME_UNKNOWN", 404), Map.entry("TAG_INVALID", 400),
      Map.entry("PAGINATION_NUMBER_INVALID", 400), Map.entry("RANGE_INVALID", 416),
      Map.entry("UNAUTHORIZED", 401), Map.entry("DENIED", 403), Map.entry("UNSUPPORTED", 405),
      Map.entry("TOOMANYREQUESTS", 429), Map.entry("UNKNOWN", 500), Map.entry("UNAVAILABLE", 503));

  private static Vertx vertx;
  private static HttpServer server;
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @BeforeAll
  static void start() throws Exception {
    vertx = Vertx.vertx();
    Router router = Router.router(vertx);
    // /fail/CODE fails with that code and a detail; /bare/CODE without a detail; /header/CODE
    // with a Retry-After of its own; /bug throws what is not a registry error.
    router.route("/fail/:code").handler(ctx -> ctx.fail(
        OciError.valueOf(ctx.pathParam("code")).exception("detail of " + ctx.pathParam("code"))));
    router.get("/bare/:code").handler(ctx -> ctx.fail(OciError.valueOf(ctx.pathParam("code")).exception(null)));
    router.get("/header/:code").handler(ctx -> ctx.fail(
        OciError.valueOf(ctx.pathParam("code")).exception("slow down").withHeader("Retry-After", "17")));
    router.get("/bug").handler(ctx -> {
      throw new IllegalStateException("internal secret");
    });
    router.route().failureHandler(new ErrorHandler(new MirrorMetrics(new SimpleMeterRegistry())));
    server = vertx.createHttpServer().requestHandler(router).listen(0, "127.0.0.1")
        .toCompletionStage().toCompletableFuture().get();
  }

  @AfterAll
  static void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @ParameterizedTest
  @EnumSource(OciError.class)
  void everyCodeIsSentWithItsStatusAndTheSpecsBody(OciError error) throws Exception {
    HttpResponse<String> r = get("/fail/" + error.name());

    assertThat(r.statusCode()).isEqualTo(STATUSES.get(error.name())).isEqualTo(error.status());
    assertThat(r.headers().firstValue("content-type")).hasValue("application/json");
    JsonObject body = new JsonObject(r.body());
    assertThat(body.fieldNames()).containsExactly("errors");
    JsonArray errors = body.getJsonArray("errors");
    assertThat(errors).hasSize(1);
    JsonObject entry = errors.getJsonObject(0);
    assertThat(entry.fieldNames()).containsExactlyInAnyOrder("code", "message", "detail");
    assertThat(entry.getString("code")).isEqualTo(error.name());
    assertThat(entry.getString("message")).isNotBlank().isEqualTo(error.message());
    assertThat(entry.getString("detail")).isEqualTo("detail of " + error.name());
  }

  @ParameterizedTest
  @EnumSource(OciError.class)
  void aHeadGetsTheStatusAndHeadersWithoutTheBody(OciError error) throws Exception {
    HttpResponse<String> get = get("/fail/" + error.name());
    HttpResponse<String> head = HTTP.send(HttpRequest.newBuilder(uri("/fail/" + error.name()))
        .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());

    assertThat(head.statusCode()).isEqualTo(error.status());
    assertThat(head.body()).isEmpty();
    assertThat(head.headers().firstValue("content-type")).hasValue("application/json");
    assertThat(head.headers().firstValue("content-length"))
        .hasValue(Integer.toString(get.body().getBytes(UTF_8).length));
  }

  @ParameterizedTest
  @EnumSource(OciError.class)
  void withoutADetailTheEntryHasNone(OciError error) throws Exception {
    HttpResponse<String> r = get("/bare/" + error.name());

    assertThat(r.statusCode()).isEqualTo(error.status());
    JsonObject entry = new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0);
    assertThat(entry.fieldNames()).containsExactlyInAnyOrder("code", "message");
    assertThat(entry.getString("code")).isEqualTo(error.name());
  }

  @ParameterizedTest
  @EnumSource(OciError.class)
  void retryAfterIsSetOnlyWhereAClientMayRetry(OciError error) throws Exception {
    HttpResponse<String> r = get("/fail/" + error.name());

    // Unavailable is temporary by definition: it always says when to come back.
    if (error == OciError.UNAVAILABLE) {
      assertThat(r.headers().firstValue("retry-after")).hasValue("5");
    } else {
      assertThat(r.headers().firstValue("retry-after")).isEmpty();
    }
  }

  @ParameterizedTest
  @EnumSource(value = OciError.class, names = {"TOOMANYREQUESTS", "UNAVAILABLE"})
  void aRetryAfterTheErrorCarriesIsKept(OciError error) throws Exception {
    HttpResponse<String> r = get("/header/" + error.name());

    assertThat(r.statusCode()).isEqualTo(error.status());
    assertThat(r.headers().allValues("retry-after")).containsExactly("17");
  }

  /** Golden answers: each code's status and body, byte for byte, written out as the spec has them. */
  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', textBlock = """
      BLOB_UNKNOWN              | 404 | blob unknown to registry
      DIGEST_INVALID            | 400 | provided digest did not match uploaded content
      MANIFEST_INVALID          | 400 | manifest invalid
      MANIFEST_UNKNOWN          | 404 | manifest unknown
      NAME_INVALID              | 400 | invalid repository name
      NAME_UNKNOWN              | 404 | repository name not known to registry
      TAG_INVALID               | 400 | manifest tag did not match URI
      PAGINATION_NUMBER_INVALID | 400 | invalid number of results requested
      RANGE_INVALID             | 416 | invalid content range
      UNAUTHORIZED              | 401 | authentication required
      DENIED                    | 403 | requested access to the resource is denied
      UNSUPPORTED               | 405 | the operation is unsupported
      TOOMANYREQUESTS           | 429 | too many requests
      UNKNOWN                   | 500 | unknown error
      UNAVAILABLE               | 503 | service unavailable
      """)
  void everyCodesAnswerIsExactlyTheGoldenOne(String code, int status, String message) throws Exception {
    HttpResponse<String> r = get("/fail/" + code);

    assertThat(r.statusCode()).isEqualTo(status);
    assertThat(r.body()).isEqualTo("{\"errors\":[{\"code\":\"" + code + "\",\"message\":\"" + message
        + "\",\"detail\":\"detail of " + code + "\"}]}");
  }

  @Test
  void whatIsNotARegistryErrorIsUnknownAndShowsNothingOfItself() throws Exception {
    HttpResponse<String> r = get("/bug");

    assertThat(r.statusCode()).isEqualTo(500);
    JsonObject entry = new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0);
    assertThat(entry.getString("code")).isEqualTo("UNKNOWN");
    assertThat(r.body()).doesNotContain("internal secret").doesNotContain("IllegalStateException");
  }

  @Test
  void theSpecsCodesAreExactlyThoseTheMirrorSends() {
    assertThat(Arrays.stream(OciError.values()).map(Enum::name))
        .containsExactlyInAnyOrderElementsOf(STATUSES.keySet());
  }

  private static HttpResponse<String> get(String path) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(uri(path)).build(), HttpResponse.BodyHandlers.ofString());
  }

  private static URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.actualPort() + path);
  }
}
