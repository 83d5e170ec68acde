package io.registrymirror.testing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * A dockerd of a test's own with Docker Hub mirrored at a https mirror, driven with the docker
 * CLI. Data root, exec root and socket live in one {@link ScratchDir}, and
 * {@code --config-file} keeps dockerd away from the machine's {@code /etc/docker/daemon.json}.
 *
 * <p>dockerd reads registry CA certificates only from {@code /etc/docker/certs.d/HOST:PORT/},
 * so the mirror's certificate goes there for the daemon's lifetime; the directory is named
 * after the mirror's port, which no other registry on this machine is using.
 *
 * <p>dockerd falls back to Docker Hub whenever the mirror fails or refuses a pull; it runs
 * {@linkplain Daemon#OFFLINE offline}, so that such a fallback fails at once.
 */
public final class Dockerd implements AutoCloseable {

  private static final Path DOCKERD = Path.of("/usr/sbin/dockerd");
  // The package's own client, which speaks the daemon's API version.
  private static final Path DOCKER = Path.of("/usr/bin/docker");
  private static final Path CERTS_D = Path.of("/etc/docker/certs.d");
  private static final Duration STARTUP = Duration.ofSeconds(60);
  private static final Duration COMMAND = Duration.ofSeconds(120);
  // The key under which `docker login` without a server keeps Docker Hub's credentials.
  private static final String DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

  private final ScratchDir scratch;
  private final Path certDir;
  private final boolean ownsCertsD = !Files.exists(CERTS_D);
  private final Thread shutdownHook = new Thread(this::close);
  private Daemon daemon;

  private Dockerd(ScratchDir scratch, Path certDir) {
    this.scratch = scratch;
    this.certDir = certDir;
  }

  public static boolean available() {
    return Files.isExecutable(DOCKERD) && Files.isExecutable(DOCKER);
  }

  /** Starts dockerd with {@code https://mirrorHostPort} as its Docker Hub mirror, trusting {@code ca} for it. */
  public static Dockerd start(String mirrorHostPort, Path ca) throws IOException, InterruptedException {
    Dockerd dockerd = new Dockerd(ScratchDir.create("dockerd-"), CERTS_D.resolve(mirrorHostPort));
    Runtime.getRuntime().addShutdownHook(dockerd.shutdownHook);
    try {
      dockerd.launch(mirrorHostPort, ca);
    } catch (IOException | InterruptedException | RuntimeException e) {
      dockerd.close();
      throw e;
    }
    return dockerd;
  }

  private void launch(String mirrorHostPort, Path ca) throws IOException, InterruptedException {
    Files.createDirectories(certDir);
    Files.copy(ca, certDir.resolve("ca.crt"));
    Path dir = scratch.path();
    // No iptables, no bridge: pulling needs no container network, and the host's rules stay as they are.
    // vfs works on any filesystem, overlay2 not where /tmp is overlayfs itself.
    JsonObject config = new JsonObject()
        .put("hosts", new JsonArray().add("unix://" + socket()))
        .put("data-root", dir.resolve("data").toString())
        .put("exec-root", dir.resolve("exec").toString())
        .put("pidfile", dir.resolve("docker.pid").toString())
        // Otherwise dockerd creates /etc/docker/key.json, its identity, and keeps it.
        .put("deprecated-key-path", dir.resolve("key.json").toString())
        .put("iptables", false)
        .put("ip-masq", false)
        .put("bridge", "none")
        .put("storage-driver", "vfs")
        .put("registry-mirrors", new JsonArray().add("https://" + mirrorHostPort));
    Path file = Files.writeString(dir.resolve("daemon.json"), config.encodePrettily());
    daemon = Daemon.start("dockerd", List.of(DOCKERD.toString(), "--config-file", file.toString()),
        dir.resolve("dockerd.log"), STARTUP, () -> Files.exists(socket()) && Exec.quietly(
            List.of(DOCKER.toString(), "--host", "unix://" + socket(), "version")));
  }

  /** Runs the docker CLI against this daemon and returns its standard output. */
  public String docker(String... args) {
    try {
      return Exec.run(COMMAND, cliEnvironment(), cli(args));
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "\ndockerd log:\n" + daemon.logTail(), e);
    }
  }

  /** Runs the docker CLI for a command that may fail, such as a pull the mirror refuses. */
  public Exec.Result attempt(String... args) {
    return Exec.attempt(COMMAND, cliEnvironment(), cli(args));
  }

  private List<String> cli(String... args) {
    List<String> command = new ArrayList<>(List.of(DOCKER.toString(), "--host", "unix://" + socket()));
    command.addAll(List.of(args));
    return command;
  }

  private Map<String, String> cliEnvironment() {
    // The CLI would otherwise read and write ~/.docker of whoever runs the tests.
    return Map.of("DOCKER_CONFIG", cliConfigDir().toString());
  }

  private Path cliConfigDir() {
    return scratch.path().resolve("cli");
  }

  /**
   * Stores Docker Hub credentials in the CLI's {@code config.json}, where {@code docker login}
   * without a server keeps them, beside whatever else the file holds. {@code docker login}
   * itself checks them with Docker Hub, which the daemon cannot reach here.
   */
  public void storeDockerHubCredentials(String user, String password) throws IOException {
    Path file = Files.createDirectories(cliConfigDir()).resolve("config.json");
    JsonObject config = Files.exists(file) ? new JsonObject(Files.readString(file)) : new JsonObject();
    JsonObject auths = config.getJsonObject("auths", new JsonObject());
    String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    config.put("auths", auths.put(DOCKER_HUB_AUTH_KEY, new JsonObject().put("auth", auth)));
    Files.writeString(file, config.encodePrettily());
  }

  /** The daemon's whole log so far, e.g. to read why it moved on from the mirror to Docker Hub. */
  public String log() throws IOException {
    return Files.readString(scratch.path().resolve("dockerd.log"));
  }

  /** {@code docker image inspect}: Id, RepoDigests, RootFS.Layers and the rest. */
  public JsonObject inspect(String reference) {
    return new JsonArray(docker("image", "inspect", reference)).getJsonObject(0);
  }

  private Path socket() {
    return scratch.path().resolve("docker.sock");
  }

  /** Stops dockerd and its containerd, removes the CA certificate and the daemon's directory; safe to call twice. */
  @Override
  public synchronized void close() {
    if (daemon != null) {
      daemon.close();
      daemon = null;
    }
    ScratchDir.delete(certDir);
    if (ownsCertsD) {
      ScratchDir.delete(CERTS_D);
    }
    scratch.close();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // Called from the hook itself while the JVM exits: nothing left to remove.
    }
  }
}
