package io.registrymirror;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.log.LogSetup;
import io.registrymirror.metrics.MeterRegistries;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * {@code java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train}: pulls an image
 * through a mirror started in this process, from a small registry also served here, the way
 * clients do (tag, manifest, cold blob, warm blob, range, a miss, metrics), then exits. It loads
 * the classes a mirror needs for its first pulls, so that the JVM can write them to a class-data
 * archive; a mirror started with {@code -XX:SharedArchiveFile=FILE} then skips loading and
 * verifying them, which is most of its warm-up (see the Dockerfile). Nothing leaves loopback, and
 * the pulled bytes are checked: exits 0 when every answer was right, 1 otherwise.
 */
final class TrainCommand {

  static final String USAGE = """
      usage: java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train

      Pulls a made-up image through a mirror in this process, on loopback only, so that the JVM
      archives the classes a mirror's first pulls load. Start the mirror with
      -XX:SharedArchiveFile=FILE (same jar, same JDK) to skip loading them again.
      """;

  private static final String REPOSITORY = "train/image";
  private static final int BLOB_SIZE = 8 * 1024 * 1024;
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final String MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

  private final PrintStream err;
  private final byte[] layer = new byte[BLOB_SIZE];
  private final byte[] config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}".getBytes(StandardCharsets.UTF_8);
  private final String layerDigest;
  private final String configDigest;
  private final byte[] manifest;
  private final String manifestDigest;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  private TrainCommand(PrintStream err) {
    this.err = err;
    new Random(1).nextBytes(layer);
    layerDigest = digest(layer);
    configDigest = digest(config);
    manifest = ("{\"schemaVersion\":2,\"mediaType\":\"" + MANIFEST_TYPE + "\","
        + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + configDigest
        + "\",\"size\":" + config.length + "},"
        + "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" + layerDigest
        + "\",\"size\":" + layer.length + "}]}").getBytes(StandardCharsets.UTF_8);
    manifestDigest = digest(manifest);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length > 0) {
      boolean help = args[0].equals("--help") || args[0].equals("-h");
      (help ? out : err).println((help ? "" : "unknown argument " + args[0] + "\n") + USAGE);
      return help ? 0 : 2;
    }
    // Only what went wrong: the training's own events are of no interest to an image build.
    LogSetup.apply(false, "WARN", false);
    return new TrainCommand(err).train();
  }

  private int train() {
    Path work = null;
    PrometheusMeterRegistry prometheus = MeterRegistries.prometheusRegistry();
    Vertx vertx = Main.vertx(prometheus);
    try {
      work = Files.createTempDirectory("registry-mirror-train");
      HttpServer origin = await(vertx.createHttpServer().requestHandler(this::serve).listen(0, "127.0.0.1"));
      Path file = work.resolve("mirror.yaml");
      Files.writeString(file, """
          listen: 127.0.0.1:0
          cache:
            dir: %s
          upstreams:
            origin:
              url: http://127.0.0.1:%d
              default: true
              allowPrivateHosts: [127.0.0.1]
          """.formatted(work.resolve("cache"), origin.actualPort()));
      RegistryMirror mirror = await(RegistryMirror.start(vertx, ConfigLoader.load(file, Map.of()), prometheus));
      try {
        pull("http://127.0.0.1:" + mirror.port());
      } finally {
        await(mirror.close(Duration.ofSeconds(5)));
      }
      return 0;
    } catch (Exception e) {
      err.println("registry-mirror train: " + e.getMessage());
      return 1;
    } finally {
      await(vertx.close());
      if (work != null) {
        delete(work);
      }
    }
  }

  /** What a client does on its first pull of an image, and again once it is cached. */
  private void pull(String mirror) throws IOException, InterruptedException {
    String v2 = mirror + "/v2/" + REPOSITORY;
    expect(send("GET", mirror + "/v2/", null), 200, null);
    for (int round = 0; round < 2; round++) {
      expect(send("HEAD", v2 + "/manifests/latest", null), 200, null);
      expect(send("GET", v2 + "/manifests/latest", null), 200, manifestDigest);
      expect(send("GET", v2 + "/manifests/" + manifestDigest, null), 200, manifestDigest);
      expect(send("GET", v2 + "/blobs/" + configDigest, null), 200, configDigest);
      expect(send("HEAD", v2 + "/blobs/" + layerDigest, null), 200, null);
      expect(send("GET", v2 + "/blobs/" + layerDigest, null), 200, layerDigest);
      HttpResponse<byte[]> range = send("GET", v2 + "/blobs/" + layerDigest, "bytes=1000-1999");
      expect(range, 206, null);
      if (!Arrays.equals(range.body(), Arrays.copyOfRange(layer, 1000, 2000))) {
        throw new IOException("a range of the layer came back wrong");
      }
    }
    expect(send("GET", v2 + "/blobs/sha256:" + "0".repeat(64), null), 404, null);
    expect(send("GET", mirror + "/metrics", null), 200, null);
  }

  private HttpResponse<byte[]> send(String method, String url, String range) throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).timeout(TIMEOUT)
        .header("Accept", MANIFEST_TYPE).method(method, HttpRequest.BodyPublishers.noBody());
    if (range != null) {
      request.header("Range", range);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static void expect(HttpResponse<byte[]> response, int status, String digest) throws IOException {
    if (response.statusCode() != status) {
      throw new IOException(response.request().method() + " " + response.uri() + " answered "
          + response.statusCode() + ", not " + status);
    }
    if (digest != null && !digest(response.body()).equals(digest)) {
      throw new IOException(response.uri() + " came back with other bytes than " + digest);
    }
  }

  /** The made-up registry: the image's tag, manifest and blobs, nothing else. */
  private void serve(HttpServerRequest request) {
    String path = request.path();
    String prefix = "/v2/" + REPOSITORY + "/";
    byte[] body = null;
    String type = "application/octet-stream";
    String digest = null;
    if (path.equals("/v2/")) {
      body = "{}".getBytes(StandardCharsets.UTF_8);
      type = "application/json";
    } else if (path.equals(prefix + "manifests/latest") || path.equals(prefix + "manifests/" + manifestDigest)) {
      body = manifest;
      type = MANIFEST_TYPE;
      digest = manifestDigest;
    } else if (path.equals(prefix + "blobs/" + layerDigest)) {
      body = layer;
      digest = layerDigest;
    } else if (path.equals(prefix + "blobs/" + configDigest)) {
      body = config;
      digest = configDigest;
    }
    if (body == null) {
      request.response().setStatusCode(404).putHeader("Content-Type", "application/json")
          .end("{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown to registry\"}]}");
      return;
    }
    request.response().putHeader("Content-Type", type).putHeader("Content-Length", Integer.toString(body.length));
    if (digest != null) {
      request.response().putHeader("Docker-Content-Digest", digest);
    }
    if (request.method() == HttpMethod.HEAD) {
      request.response().end();
    } else {
      request.response().end(Buffer.buffer(body));
    }
  }

  private static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new IllegalStateException(cause.getMessage(), cause);
    }
  }

  private static String digest(byte[] bytes) {
    try {
      return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void delete(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // A temporary directory: what is left goes with the build stage or the next reboot.
    }
  }
}
