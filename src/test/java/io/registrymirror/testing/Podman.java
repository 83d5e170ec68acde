package io.registrymirror.testing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * podman with image storage of a test's own and a given {@code registries.conf}. Storage, run
 * state, libpod's own state and staged blobs all live in one {@link ScratchDir}, so the
 * machine's image store, {@code /run/libpod} and {@code /var/tmp} stay untouched. Only the
 * blob-info cache under {@code /var/lib/containers/cache}, which every containers/image tool
 * of the machine shares and skopeo updates too, records what was pulled.
 */
public final class Podman implements AutoCloseable {

  private static final Path PODMAN = Path.of("/usr/bin/podman");
  private static final Duration COMMAND = Duration.ofSeconds(120);
  /** Where netavark keeps network state as root; podman creates it on every start, with no option to move it. */
  private static final Path NETAVARK_RUN_DIR = Path.of("/run/containers/networks");

  private final ScratchDir scratch;
  private final Path registriesConf;
  private final Path certDir;
  /** The directories of {@link #NETAVARK_RUN_DIR} that podman is about to create, deepest first. */
  private final List<Path> runDirsCreated = new ArrayList<>();

  private Podman(ScratchDir scratch, Path registriesConf, Path certDir) {
    this.scratch = scratch;
    this.registriesConf = registriesConf;
    this.certDir = certDir;
    for (Path dir = NETAVARK_RUN_DIR; !Files.exists(dir); dir = dir.getParent()) {
      runDirsCreated.add(dir);
    }
  }

  public static boolean available() {
    return Files.isExecutable(PODMAN);
  }

  /**
   * A podman that resolves registries with {@code registriesConf} and trusts the CA certificates
   * ({@code *.crt}) in {@code certDir} for every registry and mirror it contacts.
   */
  public static Podman create(Path registriesConf, Path certDir) throws IOException {
    return new Podman(ScratchDir.create("podman-"), registriesConf, certDir);
  }

  /** {@code podman pull} of a fully qualified reference, with options such as {@code --platform}. */
  public void pull(String reference, String... options) throws IOException {
    List<String> args = new ArrayList<>(List.of("pull", "--cert-dir", certDir.toString()));
    args.addAll(List.of(options));
    args.add(reference);
    podman(args.toArray(String[]::new));
  }

  /** {@code podman image inspect}: Id, Digest, RepoDigests, RootFS and the rest. */
  public JsonObject inspect(String reference) throws IOException {
    return new JsonArray(podman("image", "inspect", reference)).getJsonObject(0);
  }

  private String podman(String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(PODMAN.toString(),
        "--root", scratch.dir("root").toString(),
        "--runroot", scratch.dir("runroot").toString(),
        "--tmpdir", scratch.dir("libpod").toString(),
        "--storage-driver", "vfs",
        "--events-backend", "none"));
    command.addAll(List.of(args));
    // TMPDIR is where blobs are staged while they download.
    return Exec.run(COMMAND, Map.of("CONTAINERS_REGISTRIES_CONF", registriesConf.toString(),
        "TMPDIR", scratch.dir("tmp").toString()), command);
  }

  /**
   * Deletes the storage, and netavark's directories if podman created them and left them empty;
   * podman runs no daemon, so there is nothing to stop.
   */
  @Override
  public void close() {
    scratch.close();
    for (Path dir : runDirsCreated) {
      try {
        Files.deleteIfExists(dir);
      } catch (IOException inUse) {
        // Not empty: another podman on this machine has put networks there since. Leave it.
        return;
      }
    }
  }
}
