package io.registrymirror.testing;

import io.registrymirror.RegistryMirror;
import io.registrymirror.config.ConfigLoader;
import io.registrymirror.config.MirrorConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * The mirror, started in this JVM on a free loopback port in front of one upstream, with a plain
 * HTTP client to talk to it as registry clients do.
 */
public final class MirrorUnderTest implements AutoCloseable {

  private final RegistryMirror mirror;
  private final Path cacheDir;
  private final HttpClient http;
  private final String scheme;

  /**
   * @param tlsCert the certificate of the mirror's TLS listener, which the client trusts at
   *     127.0.0.1 whatever it names; null for plain http
   */
  private MirrorUnderTest(RegistryMirror mirror, Path cacheDir, Path tlsCert) {
    this.mirror = mirror;
    this.cacheDir = cacheDir;
    HttpClient.Builder client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5));
    if (tlsCert != null) {
      try {
        client.sslContext(TestCertificate.trustingAtAnyAddress(tlsCert));
      } catch (GeneralSecurityException | IOException e) {
        throw new IllegalStateException(e);
      }
    }
    this.http = client.build();
    this.scheme = tlsCert == null ? "http" : "https";
  }

  /** A mirror of {@code upstreamUrl}, known to clients as {@code registryName}. */
  public static MirrorUnderTest start(Vertx vertx, String registryName, String upstreamUrl,
      Path cacheDir, String upstreamExtraYaml) {
    return start(vertx, registryName, upstreamUrl, cacheDir, upstreamExtraYaml, "");
  }

  /** The same, with more top-level configuration, e.g. {@code tls} or {@code auth}. */
  public static MirrorUnderTest start(Vertx vertx, String registryName, String upstreamUrl,
      Path cacheDir, String upstreamExtraYaml, String topLevelYaml) {
    String yaml = topLevelYaml + "\n" + """
        listen: 127.0.0.1:0
        cache:
          dir: %s
        upstreams:
          %s:
            url: %s
            default: true
        %s%s
        """.formatted(cacheDir, registryName, upstreamUrl, TestLimits.upstreamTimeoutsYaml().indent(4),
        upstreamExtraYaml.indent(4));
    MirrorConfig config = ConfigLoader.parse(yaml);
    return started(RegistryMirror.start(vertx, config), cacheDir, config);
  }

  /**
   * A mirror configured by a whole YAML document, e.g. one with several upstreams;
   * {@code cacheDir} is the {@code cache.dir} the document names.
   */
  public static MirrorUnderTest startWithConfig(Vertx vertx, String yaml, Path cacheDir) {
    MirrorConfig config = ConfigLoader.parse(yaml);
    return started(RegistryMirror.start(vertx, config), cacheDir, config);
  }

  /** A started mirror, once its cache index is read and it says it is ready, as an orchestrator waits. */
  private static MirrorUnderTest started(Future<RegistryMirror> start, Path cacheDir, MirrorConfig config) {
    RegistryMirror mirror = await(start.toCompletionStage().toCompletableFuture());
    await(mirror.indexed().toCompletionStage().toCompletableFuture());
    return new MirrorUnderTest(mirror, cacheDir, config.tls() == null ? null : config.tls().cert());
  }

  public static MirrorUnderTest start(Vertx vertx, String upstreamUrl, Path cacheDir) {
    return start(vertx, "local", upstreamUrl, cacheDir, "");
  }

  public String url() {
    return scheme + "://127.0.0.1:" + mirror.port();
  }

  public String hostPort() {
    return "127.0.0.1:" + mirror.port();
  }

  public Path cacheDir() {
    return cacheDir;
  }

  public HttpResponse<byte[]> get(String path, String... headers) {
    return send("GET", path, headers);
  }

  public HttpResponse<byte[]> head(String path, String... headers) {
    return send("HEAD", path, headers);
  }

  public HttpResponse<byte[]> send(String method, String path, String... headers) {
    try {
      return http.send(request(method, path, headers), HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** The response with its body unread, for streaming, hashing or hanging up early. */
  public HttpResponse<InputStream> open(String path, String... headers) throws IOException, InterruptedException {
    return http.send(request("GET", path, headers), HttpResponse.BodyHandlers.ofInputStream());
  }

  private HttpRequest request(String method, String path, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url() + path))
        .timeout(TestLimits.ANSWER_TIMEOUT)
        .method(method, HttpRequest.BodyPublishers.noBody());
    for (int i = 0; i + 1 < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    return b.build();
  }

  /** What a client that reads a blob to its end got: its bytes' count and digest, or the error. */
  public record Received(int status, long bytes, String digest, IOException error) {
    public boolean complete(long size, String expectedDigest) {
      return error == null && bytes == size && expectedDigest.equals(digest);
    }
  }

  public static Received drain(HttpResponse<InputStream> response) {
    MessageDigest sha = sha256();
    long n = 0;
    byte[] buf = new byte[64 * 1024];
    try (InputStream in = response.body()) {
      int r;
      while ((r = in.read(buf)) >= 0) {
        sha.update(buf, 0, r);
        n += r;
      }
    } catch (IOException e) {
      return new Received(response.statusCode(), n, null, e);
    }
    return new Received(response.statusCode(), n, "sha256:" + HexFormat.of().formatHex(sha.digest()), null);
  }

  public Received fetch(String path, String... headers) {
    try {
      return drain(open(path, headers));
    } catch (IOException e) {
      return new Received(0, 0, null, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Files under {@code sub} of the cache directory (e.g. "blobs", "tmp"). */
  public long filesUnder(String sub) {
    Path dir = cacheDir.resolve(sub);
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Path blobFile(String digest) {
    String hex = digest.substring(digest.indexOf(':') + 1);
    return cacheDir.resolve("blobs").resolve(digest.substring(0, digest.indexOf(':')))
        .resolve(hex.substring(0, 2)).resolve(hex);
  }

  /**
   * Waits for a condition that the mirror reaches asynchronously (a fill finishing, a temporary
   * file being deleted), failing after {@code timeout}.
   */
  public static void eventually(Duration timeout, BooleanSupplier condition, String what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for: " + what);
      }
      try {
        TimeUnit.MILLISECONDS.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  @Override
  public void close() {
    await(mirror.close().toCompletionStage().toCompletableFuture());
  }

  private static <T> T await(java.util.concurrent.CompletableFuture<T> f) {
    try {
      return f.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("mirror did not start or stop: " + e.getMessage(), e);
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
