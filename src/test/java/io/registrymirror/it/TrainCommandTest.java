package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.Exec;
import io.registrymirror.testing.MirrorProcess;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train}, as the image build
 * runs it: it exits 0 after its pulls, and a JVM started with the archive it leaves loads the
 * classes of a pull's path (tag, manifest, fill, send) from it.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TrainCommandTest {

  private static final Duration RUN = Duration.ofSeconds(90);

  @TempDir
  Path dir;

  @Test
  void leavesAnArchiveWithThePullPathInIt() throws IOException {
    // Class-data archives take classes from jars only, not from directories.
    String classPath = jarredClassPath();
    Path archive = dir.resolve("registry-mirror.jsa");

    Exec.Result training = Exec.attempt(RUN, Map.of(),
        java(classPath, "-XX:ArchiveClassesAtExit=" + archive, "train"));
    assertThat(training.exitCode()).as(training.toString()).isZero();
    assertThat(training.stderr()).doesNotContain("registry-mirror train:");
    assertThat(archive).isNotEmptyFile();

    // -Xshare:on: a JVM that cannot map the archive refuses to start.
    Exec.Result again = Exec.attempt(RUN, Map.of(),
        java(classPath, "-Xshare:on", "-XX:SharedArchiveFile=" + archive, "-Xlog:class+load=info", "train"));
    assertThat(again.exitCode()).as(again.toString()).isZero();
    for (String type : List.of("io.registrymirror.api.BlobHandler", "io.registrymirror.api.FillSender",
        "io.registrymirror.store.BlobFill", "io.registrymirror.upstream.BodyTap",
        "io.registrymirror.tags.TagResolver", "io.netty.handler.codec.http.HttpObjectDecoder")) {
      assertThat(again.stdout()).as(type + " from the archive")
          .containsPattern("(?m)^\\[.*\\] " + type.replace(".", "\\.") + " source: shared objects file \\(top\\)$");
    }
  }

  @Test
  void saysHowToUseIt() {
    Exec.Result help = Exec.attempt(RUN, Map.of(), java(MirrorProcess.classPath(), "train", "--help"));
    assertThat(help.exitCode()).isZero();
    assertThat(help.stdout()).contains("usage: java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train");

    Exec.Result wrong = Exec.attempt(RUN, Map.of(), java(MirrorProcess.classPath(), "train", "--fast"));
    assertThat(wrong.exitCode()).isEqualTo(2);
    assertThat(wrong.stderr()).contains("unknown argument --fast");
  }

  /** The test class path with its directories (the project's classes) made into one jar. */
  private String jarredClassPath() throws IOException {
    List<String> entries = new ArrayList<>();
    Path jar = dir.resolve("classes.jar");
    Set<String> names = new HashSet<>();
    try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
      for (String entry : MirrorProcess.classPath().split(File.pathSeparator)) {
        Path path = Path.of(entry);
        if (Files.isDirectory(path)) {
          add(out, path, names);
        } else if (!entry.isEmpty()) {
          entries.add(entry);
        }
      }
    }
    entries.add(0, jar.toString());
    return String.join(File.pathSeparator, entries);
  }

  /** Adds the files under {@code root}; a name already in the jar keeps its first file, as a class path would. */
  private static void add(JarOutputStream out, Path root, Set<String> names) throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        String name = root.relativize(file).toString().replace(File.separatorChar, '/');
        if (names.add(name)) {
          out.putNextEntry(new JarEntry(name));
          Files.copy(file, out);
          out.closeEntry();
        }
      }
    }
  }

  private static List<String> java(String classPath, String... args) {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    List<String> jvm = Arrays.stream(args).filter(a -> a.startsWith("-X")).collect(Collectors.toList());
    command.addAll(jvm);
    command.addAll(List.of("-cp", classPath, "io.registrymirror.Main"));
    command.addAll(Arrays.stream(args).filter(a -> !a.startsWith("-X")).toList());
    return command;
  }
}
