package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.ScrubCommand;
import io.registrymirror.testing.DamagedCache;
import io.registrymirror.testing.Exec;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.Required;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code registry-mirror.jar scrub} run as an operator runs it, in a process of its own with its
 * output going to a file (so no terminal: plain lines): its exit status, what it prints, and
 * what it leaves in the cache directory.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ScrubCommandTest {

  private static final Duration RUN = Duration.ofSeconds(60);

  @TempDir
  Path dir;

  @Test
  void repairsADamagedCacheAndSaysWhatItDid() throws IOException {
    DamagedCache cache = DamagedCache.create(dir.resolve("cache"));
    long files = cache.checkedFiles();
    Path config = Files.writeString(dir.resolve("mirror.yaml"), "cache:\n  dir: " + cache.root() + "\n");

    Exec.Result result = scrub(Map.of(), "--config", config.toString());

    assertThat(result.exitCode()).as(result.toString()).isZero();
    List<String> lines = result.stdout().lines().toList();
    assertThat(lines.get(0)).isEqualTo("scrub: checking " + cache.root());
    for (Path damaged : cache.damaged()) {
      assertThat(lines).as("a line for " + damaged).anyMatch(l -> l.startsWith("removed " + cache.relative(damaged) + " ("));
    }
    assertThat(lines).filteredOn(l -> l.startsWith("removed ")).hasSize(cache.damaged().size());
    for (String blob : cache.damagedBlobs()) {
      assertThat(lines).anyMatch(l -> l.endsWith("does not match its digest " + blob));
    }
    // Not a terminal: whole lines, each tenth of the bytes, never a bar redrawn in place.
    assertThat(result.stdout()).doesNotContain("\r").doesNotContain("\033");
    assertThat(lines).filteredOn(l -> l.matches("scrub: \\d+% .* of .*, \\d+ of " + files + " files, .*/s, \\d+ removed"))
        .hasSizeGreaterThanOrEqualTo(3)
        .last().asString().startsWith("scrub: 100% ");
    assertThat(lines.get(lines.size() - 1))
        .matches("scrub: checked " + files + " files, .* in [0-9.]+ s \\(.*/s\\); removed "
            + cache.damaged().size() + " files, .*");
    assertThat(result.stderr()).isEmpty();
    for (Path p : cache.kept()) {
      assertThat(p).exists();
    }
    for (Path p : cache.damaged()) {
      assertThat(p).doesNotExist();
    }

    Exec.Result again = scrub(Map.of(), "--config", config.toString());
    assertThat(again.exitCode()).isZero();
    assertThat(again.stdout()).doesNotContain("removed blobs").contains("; removed 0 files, 0 B");
  }

  @Test
  void onATerminalDrawsABarInPlace() throws IOException {
    DamagedCache cache = DamagedCache.create(dir.resolve("cache"));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();

    int status = ScrubCommand.run(new String[0], Map.of("MIRROR_CACHE_DIR", cache.root().toString()),
        new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8), true);

    assertThat(status).isZero();
    String shown = out.toString(StandardCharsets.UTF_8);
    // Each redraw goes back to the start of the line and erases it; the full bar stays on screen.
    assertThat(shown).contains("\r\033[2K[" + "#".repeat(30) + "] 100%  ");
    assertThat(shown.split("\r\033\\[2K\\[", -1).length).isGreaterThan(2);
    // A removal is written on a line of its own, the bar erased first, and the summary after the bar.
    for (Path damaged : cache.damaged()) {
      assertThat(shown).containsPattern("(^|\n|\r\033\\[2K)removed " + Pattern.quote(cache.relative(damaged)) + " \\(");
    }
    assertThat(shown).containsPattern(" removed\nscrub: checked " + cache.checkedFiles() + " files, ");
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
  }

  @Test
  void takesTheCacheDirectoryFromTheEnvironmentAndFailsWhenItIsUnusable() throws IOException {
    Path missing = dir.resolve("no-such-cache");
    Exec.Result result = scrub(Map.of("MIRROR_CACHE_DIR", missing.toString()));
    assertThat(result.exitCode()).isEqualTo(1);
    assertThat(result.stderr()).contains("cache.dir: " + missing + " cannot be used: no such directory");
    assertThat(missing).doesNotExist();

    Path file = Files.writeString(dir.resolve("a-file"), "x");
    Exec.Result notDir = scrub(Map.of("MIRROR_CACHE_DIR", file.toString()));
    assertThat(notDir.exitCode()).isEqualTo(1);
    assertThat(notDir.stderr()).contains("cache.dir: " + file + " cannot be used: not a directory");
  }

  @Test
  void aFileThatCannotBeRemovedFailsTheRun() throws IOException {
    DamagedCache cache = DamagedCache.create(dir.resolve("cache"));
    Path stuck = cache.damaged().get(0);
    // Immutable: not even root may delete it, as on a cache mounted read-only.
    Required.that(Exec.attempt(RUN, Map.of(), List.of("chattr", "+i", stuck.toString())).exitCode() == 0,
        "chattr +i failed: it needs root and the Debian package e2fsprogs");
    try {
      Exec.Result result = scrub(Map.of("MIRROR_CACHE_DIR", cache.root().toString()));

      assertThat(result.exitCode()).isEqualTo(1);
      assertThat(result.stderr()).contains("cannot check " + cache.relative(stuck) + ": ")
          .contains("registry-mirror scrub: 1 file could not be read or removed");
      assertThat(stuck).exists();
      for (Path p : cache.damaged().subList(1, cache.damaged().size())) {
        assertThat(p).doesNotExist();
      }
    } finally {
      Exec.attempt(RUN, Map.of(), List.of("chattr", "-i", stuck.toString()));
    }
  }

  @Test
  void aBadConfigurationKeyIsNamed() throws IOException {
    Path config = Files.writeString(dir.resolve("mirror.yaml"), "cache:\n  dir: " + dir + "\n  scrubInterval: often\n");
    Exec.Result result = scrub(Map.of(), "--config", config.toString());
    assertThat(result.exitCode()).isEqualTo(2);
    assertThat(result.stderr()).contains("cache.scrubInterval");
  }

  @Test
  void helpListsTheCommand() {
    Exec.Result help = scrub(Map.of(), "--help");
    assertThat(help.exitCode()).isZero();
    assertThat(help.stdout()).contains("usage: java -jar registry-mirror.jar scrub [--config FILE]");
    Exec.Result mainHelp = Exec.attempt(RUN, Map.of(), java("--help"));
    assertThat(mainHelp.stdout()).contains("registry-mirror.jar scrub [--config FILE]");
  }

  private static Exec.Result scrub(Map<String, String> env, String... args) {
    List<String> all = new ArrayList<>(List.of("scrub"));
    all.addAll(Arrays.asList(args));
    return Exec.attempt(RUN, env, java(all.toArray(String[]::new)));
  }

  private static List<String> java(String... args) {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx128m", "-cp", MirrorProcess.classPath(), "io.registrymirror.Main"));
    command.addAll(Arrays.asList(args));
    return command;
  }
}
