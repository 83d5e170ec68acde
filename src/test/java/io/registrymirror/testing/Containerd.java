package io.registrymirror.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A containerd of a test's own, driven with {@code ctr}: its root, state, sockets and the hosts
 * directory that points registries at a mirror all live in one {@link ScratchDir}, so it shares
 * nothing with a containerd the machine may run, and leaves nothing behind. ctr, which resolves
 * and fetches images itself, runs {@linkplain Daemon#OFFLINE offline}: containerd goes on to the
 * registry itself when a mirror fails or refuses a pull, and that must fail at once.
 */
public final class Containerd implements AutoCloseable {

  private static final Path CONTAINERD = Path.of("/usr/bin/containerd");
  private static final Path CTR = Path.of("/usr/bin/ctr");
  private static final String NAMESPACE = "e2e";
  private static final Duration STARTUP = Duration.ofSeconds(30);
  private static final Duration COMMAND = Duration.ofSeconds(120);

  private final ScratchDir scratch;
  private final Thread shutdownHook = new Thread(this::close);
  private Daemon daemon;

  private Containerd(ScratchDir scratch) {
    this.scratch = scratch;
  }

  public static boolean available() {
    return Files.isExecutable(CONTAINERD) && Files.isExecutable(CTR);
  }

  public static Containerd start() throws IOException, InterruptedException {
    Containerd containerd = new Containerd(ScratchDir.create("containerd-"));
    Runtime.getRuntime().addShutdownHook(containerd.shutdownHook);
    try {
      containerd.launch();
    } catch (IOException | InterruptedException | RuntimeException e) {
      containerd.close();
      throw e;
    }
    return containerd;
  }

  private void launch() throws IOException, InterruptedException {
    Path dir = scratch.path();
    // The cri plugin is for kubelets and wants a CNI setup; pulling with ctr does not need it.
    Path config = Files.writeString(dir.resolve("config.toml"), """
        version = 2
        root = "%1$s/root"
        state = "%1$s/state"
        disabled_plugins = ["io.containerd.grpc.v1.cri"]
        [grpc]
          address = "%1$s/containerd.sock"
        [ttrpc]
          address = "%1$s/containerd.sock.ttrpc"
        [debug]
          address = "%1$s/debug.sock"
        """.formatted(dir));
    daemon = Daemon.start("containerd", List.of(CONTAINERD.toString(), "--config", config.toString()),
        dir.resolve("containerd.log"), STARTUP,
        () -> Files.exists(socket()) && Exec.quietly(List.of(CTR.toString(), "--address", socket().toString(), "version")));
  }

  /**
   * Sends pulls of {@code registry} to the mirror at {@code https://mirrorHostPort}, checking its
   * certificate against {@code ca}, with {@code server} as what containerd falls back to.
   */
  public void mirror(String registry, String server, String mirrorHostPort, Path ca) throws IOException {
    mirror(registry, server, mirrorHostPort, ca, Map.of());
  }

  /**
   * The same, with {@code headers} (e.g. {@code Authorization}) sent on every request to the
   * mirror, and only to the mirror: the host's own {@code header} table.
   */
  public void mirror(String registry, String server, String mirrorHostPort, Path ca, Map<String, String> headers)
      throws IOException {
    Path dir = Files.createDirectories(hostsDir().resolve(registry));
    StringBuilder hosts = new StringBuilder("""
        server = "%1$s"

        [host."https://%2$s"]
          capabilities = ["pull", "resolve"]
          ca = "%3$s"
        """.formatted(server, mirrorHostPort, ca));
    if (!headers.isEmpty()) {
      hosts.append("  [host.\"https://").append(mirrorHostPort).append("\".header]\n");
      headers.forEach((name, value) -> hosts.append("    ").append(name).append(" = \"").append(value).append("\"\n"));
    }
    Files.writeString(dir.resolve("hosts.toml"), hosts);
  }

  /** {@code ctr images pull} through the hosts directory, with options such as {@code --all-platforms}. */
  public void pull(String reference, String... options) {
    ctr(pullArgs(reference, options));
  }

  /** The same for a pull that may fail, such as one the mirror refuses: ctr's exit status and output. */
  public Exec.Result attemptPull(String reference) {
    return Exec.attempt(COMMAND, Daemon.OFFLINE, command(pullArgs(reference)));
  }

  private List<String> pullArgs(String reference, String... options) {
    // The native snapshotter unpacks on any filesystem; overlayfs fails where /tmp is overlayfs itself.
    List<String> args = new ArrayList<>(List.of("images", "pull", "--snapshotter", "native",
        "--hosts-dir", hostsDir().toString()));
    args.addAll(List.of(options));
    args.add(reference);
    return args;
  }

  /** The digest of what {@code reference} names in the image store: the manifest or index pulled. */
  public String imageDigest(String reference) {
    // Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS, after a header line.
    List<String> rows = ctr(List.of("images", "list", "name==" + reference)).lines().skip(1).toList();
    if (rows.size() != 1) {
      throw new AssertionError("expected one image " + reference + ", got " + rows);
    }
    return rows.get(0).split("\\s+")[2];
  }

  /** The digests of every blob in the content store (containerd checks each one as it writes it). */
  public Set<String> contentDigests() {
    return ctr(List.of("content", "list", "--quiet")).lines().map(String::strip)
        .filter(line -> !line.isEmpty()).collect(Collectors.toSet());
  }

  /** The bytes of a JSON blob, such as a manifest or an index, from the content store. */
  public String content(String digest) {
    return ctr(List.of("content", "get", digest));
  }

  private String ctr(List<String> args) {
    try {
      return Exec.run(COMMAND, Daemon.OFFLINE, command(args));
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "\ncontainerd log:\n" + daemon.logTail(), e);
    }
  }

  private List<String> command(List<String> args) {
    List<String> command = new ArrayList<>(List.of(CTR.toString(), "--address", socket().toString(),
        "--namespace", NAMESPACE));
    command.addAll(args);
    return command;
  }

  private Path socket() {
    return scratch.path().resolve("containerd.sock");
  }

  private Path hostsDir() {
    return scratch.path().resolve("hosts");
  }

  /** Stops containerd, unmounts what it mounted and deletes its directory; safe to call twice. */
  @Override
  public synchronized void close() {
    if (daemon != null) {
      daemon.close();
      daemon = null;
    }
    scratch.close();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // Called from the hook itself while the JVM exits: nothing left to remove.
    }
  }
}
