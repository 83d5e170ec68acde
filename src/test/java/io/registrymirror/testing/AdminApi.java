package io.registrymirror.testing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/** The mirror's admin endpoints as an operator's script calls them: prefetch and its status. */
public final class AdminApi {

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();
  private final String base;
  private final String token;

  /** @param token sent as {@code Authorization: Bearer}, or null to send none */
  public AdminApi(String baseUrl, String token) {
    this.base = baseUrl;
    this.token = token;
  }

  /** {@code POST /api/v1/prefetch} with {@code {"image", "platforms"}}. */
  public HttpResponse<String> prefetch(String image, String... platforms) {
    JsonObject body = new JsonObject().put("image", image);
    if (platforms.length > 0) {
      body.put("platforms", new JsonArray(List.of((Object[]) platforms)));
    }
    return post("/api/v1/prefetch", body.encode());
  }

  public HttpResponse<String> post(String path, String body, String... headers) {
    return send(builder(path, headers).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)));
  }

  public HttpResponse<String> get(String path, String... headers) {
    return send(builder(path, headers).GET());
  }

  /** Polls the job at {@code location} until it is done or failed, and returns its last status. */
  public JsonObject awaitEnd(String location, Duration timeout) {
    AtomicReference<JsonObject> last = new AtomicReference<>();
    MirrorUnderTest.eventually(timeout, () -> {
      HttpResponse<String> r = get(location);
      if (r.statusCode() != 200) {
        throw new AssertionError("status " + location + " answered " + r.statusCode() + ": " + r.body());
      }
      last.set(new JsonObject(r.body()));
      String state = last.get().getString("state");
      return state.equals("done") || state.equals("failed");
    }, "the prefetch job " + location + " to end");
    return last.get();
  }

  private HttpRequest.Builder builder(String path, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(TestLimits.ANSWER_TIMEOUT);
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    for (int i = 0; i + 1 < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    return b;
  }

  private HttpResponse<String> send(HttpRequest.Builder request) {
    try {
      return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
