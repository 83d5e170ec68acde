package io.registrymirror.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The reference registry (CNCF distribution) running as a child process, as a real upstream for integration tests.
 *
 * <p>Each instance owns a temporary directory holding its config, its log and its filesystem storage, and listens on
 * a free loopback port. {@link #stop()} and {@link #restart()} keep the port and the storage, so tests can simulate
 * an upstream outage and recovery. It starts without authentication; {@link #restart(Auth)} switches to token
 * or htpasswd auth on the same content, so tests can seed it with the push API first and then pull from it as from a registry
 * that demands a bearer token.
 */
public final class ReferenceRegistry implements AutoCloseable {

  private static final Path BINARY = Path.of(System.getProperty("registry.binary", "/usr/bin/docker-registry"));
  private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(15);
  private static final Duration POLL_INTERVAL = Duration.ofMillis(50);
  private static final int LOG_TAIL_LINES = 50;
  private static final HttpClient PING_CLIENT = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(1))
      .build();

  private final Path dir;
  private final int port;
  private final Thread shutdownHook = new Thread(this::stop);
  private Process process;
  private Auth auth;
  private TestCertificate tls;

  /** How the registry authenticates its clients. */
  public sealed interface Auth permits TokenAuth, HtpasswdAuth {
  }

  /**
   * The settings of the registry's {@code auth: htpasswd} section: Basic auth against bcrypt
   * entries, as private registries often do it.
   */
  public record HtpasswdAuth(String realm, Path file) implements Auth {
  }

  /**
   * The settings of the registry's {@code auth: token} section.
   *
   * @param realm the token server's URL, sent to clients in the {@code WWW-Authenticate} challenge
   * @param service the registry's name in challenges, and the audience its tokens must carry
   * @param issuer the {@code iss} its tokens must carry
   * @param rootCertBundle a PEM file of certificates; a token's {@code x5c} chain must lead to one of them
   */
  public record TokenAuth(String realm, String service, String issuer, Path rootCertBundle) implements Auth {
  }

  private ReferenceRegistry(Path dir, int port) {
    this.dir = dir;
    this.port = port;
  }

  /** Whether the registry binary is installed; tests skip themselves when it is not. */
  public static boolean available() {
    return Files.isExecutable(BINARY);
  }

  /** Starts a registry with empty storage and blocks until it answers {@code GET /v2/}. */
  public static ReferenceRegistry start() throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("reference-registry-");
    ReferenceRegistry registry = new ReferenceRegistry(dir, freePort());
    Files.createDirectories(registry.storage());
    // A child process outlives the JVM, so an aborted test run would otherwise leave registries behind.
    Runtime.getRuntime().addShutdownHook(registry.shutdownHook);
    try {
      registry.launch();
    } catch (Exception e) {
      registry.close();
      throw e;
    }
    return registry;
  }

  public String url() {
    return (tls == null ? "http" : "https") + "://127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  /** The registry's filesystem storage root, e.g. for tests that tamper with stored content. */
  public Path storage() {
    return dir.resolve("storage");
  }

  /** Kills the registry and waits for it to exit; storage and port are kept for {@link #restart()}. */
  public synchronized void stop() {
    if (process != null) {
      // No graceful shutdown: stop() stands for an upstream that suddenly goes away.
      process.destroyForcibly().onExit().join();
      process = null;
    }
  }

  /** Stops the registry if it runs and starts it again on the same port, storage and authentication. */
  public void restart() throws IOException, InterruptedException {
    stop();
    launch();
  }

  /**
   * Restarts the registry on the same port and storage with token or htpasswd authentication, or with none when
   * {@code auth} is null. Anything the registry then serves demands credentials, {@code GET /v2/} included.
   */
  public void restart(Auth auth) throws IOException, InterruptedException {
    stop();
    this.auth = auth;
    launch();
  }

  /**
   * Restarts the registry on the same port and storage serving HTTPS with {@code cert}, as public
   * registries do; plain HTTP again when it is null.
   */
  public void restartTls(TestCertificate cert) throws IOException, InterruptedException {
    stop();
    this.tls = cert;
    launch();
  }

  /** Stops the registry and deletes its directory, storage included. */
  @Override
  public void close() {
    stop();
    Runtime.getRuntime().removeShutdownHook(shutdownHook);
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The registry's whole configuration, authentication included. */
  private String config() {
    String config = """
        version: 0.1
        log:
          level: info
          formatter: text
        storage:
          filesystem:
            rootdirectory: %s
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:%d
        """.formatted(storage(), port);
    if (tls != null) {
      config += """
            tls:
              certificate: %s
              key: %s
          """.formatted(tls.certPem(), tls.keyPem());
    }
    if (auth instanceof TokenAuth token) {
      return config + """
          auth:
            token:
              realm: %s
              service: %s
              issuer: %s
              rootcertbundle: %s
          """.formatted(token.realm(), token.service(), token.issuer(), token.rootCertBundle());
    }
    if (auth instanceof HtpasswdAuth htpasswd) {
      return config + """
          auth:
            htpasswd:
              realm: %s
              path: %s
          """.formatted(htpasswd.realm(), htpasswd.file());
    }
    return config;
  }

  private void launch() throws IOException, InterruptedException {
    Files.writeString(configFile(), config());
    ProcessBuilder builder = new ProcessBuilder(BINARY.toString(), "serve", configFile().toString())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile().toFile()));
    // REGISTRY_* variables override the config file; the config written here must be the whole truth.
    builder.environment().keySet().removeIf(name -> name.startsWith("REGISTRY_"));
    synchronized (this) {
      process = builder.start();
    }
    awaitReady();
  }

  private void awaitReady() throws IOException, InterruptedException {
    HttpRequest ping = HttpRequest.newBuilder(URI.create(url() + "/v2/")).timeout(Duration.ofSeconds(2)).build();
    // With auth even the version check wants credentials: the challenge is the sign of readiness.
    int ready = auth == null ? 200 : 401;
    long deadline = System.nanoTime() + STARTUP_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("registry exited with " + process.exitValue() + ":\n" + logTail());
      }
      try {
        if (pingClient().send(ping, BodyHandlers.discarding()).statusCode() == ready) {
          return;
        }
      } catch (IOException notListeningYet) {
        // Connection refused until the registry has bound its port; poll again.
      }
      Thread.sleep(POLL_INTERVAL.toMillis());
    }
    stop();
    throw new IllegalStateException("registry not ready within " + STARTUP_TIMEOUT + ":\n" + logTail());
  }

  /** A client that trusts the registry's certificate when it serves HTTPS. */
  private HttpClient pingClient() throws IOException {
    if (tls == null) {
      return PING_CLIENT;
    }
    try {
      return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(1)).sslContext(tls.trustingContext()).build();
    } catch (GeneralSecurityException e) {
      throw new IOException(e);
    }
  }

  private String logTail() throws IOException {
    List<String> lines = Files.readAllLines(logFile());
    return String.join("\n", lines.subList(Math.max(0, lines.size() - LOG_TAIL_LINES), lines.size()));
  }

  private Path configFile() {
    return dir.resolve("config.yml");
  }

  private Path logFile() {
    return dir.resolve("registry.log");
  }

  /**
   * The registry cannot report a port it picked itself, so reserve a free one and hand it over. Another process
   * could grab it in between; that race is acceptable for tests.
   */
  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
