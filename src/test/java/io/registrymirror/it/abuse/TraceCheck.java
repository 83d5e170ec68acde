package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.AbuseRules.MARKER;

import io.registrymirror.testing.StraceLog;
import io.registrymirror.testing.StraceLog.Call;
import io.registrymirror.testing.StraceLog.PathArgument;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.api.SoftAssertions;

/**
 * Every path the mirror's process touched and every connection it opened, from its strace log.
 */
final class TraceCheck {

  private static final Pattern WRITE_FLAGS = Pattern.compile("O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND");
  private static final Set<String> MUTATING = Set.of("creat", "mkdir", "mkdirat", "rename", "renameat",
      "renameat2", "unlink", "unlinkat");

  private TraceCheck() {
  }

  /**
   * Every path the mirror's process touched, from the strace log. Paths derived from a request
   * (a marker, a percent sign, a dot-dot segment, a control character) may only be inside the
   * cache; writes, creations, renames and deletions may only be inside the cache, apart from the
   * JVM's own perf-data file and its own /proc entries.
   */
  static void check(SoftAssertions softly, AbuseFigures figures, Path trace, Path cache, int upstreamPort)
      throws IOException {
    Path cacheDir = cache.toAbsolutePath().normalize();
    Path cwd = Path.of("").toAbsolutePath();
    List<String> jvmHomes = List.of(Path.of(System.getProperty("java.home")).toString(),
        Path.of(System.getProperty("java.home")).toRealPath().toString());
    List<String> derivedOutside = new ArrayList<>();
    List<String> oddInside = new ArrayList<>();
    List<String> writtenOutside = new ArrayList<>();
    List<String> connects = new ArrayList<>();
    int installs = 0;
    List<Call> calls = StraceLog.read(trace);
    for (Call call : calls) {
      if (call.name().equals("connect")) {
        connects.add(call.line());
        continue;
      }
      boolean writes = MUTATING.contains(call.name()) || WRITE_FLAGS.matcher(call.args()).find();
      for (PathArgument path : call.paths()) {
        String raw = path.raw();
        Path resolved = raw.startsWith("/") ? Path.of(raw).normalize()
            : path.relativeToFd() ? null : cwd.resolve(raw).normalize();
        boolean inCache = resolved != null && resolved.startsWith(cacheDir) && !resolved.equals(cacheDir)
            || resolved != null && resolved.equals(cacheDir) && call.name().startsWith("mkdir");
        boolean dotDot = Arrays.asList(raw.split("/")).contains("..");
        boolean jvmOwn = jvmHomes.stream().anyMatch(home -> raw.startsWith(home + "/"));
        boolean derived = raw.toLowerCase(Locale.ROOT).contains(MARKER) || raw.indexOf('%') >= 0
            || raw.chars().anyMatch(ch -> ch < 0x20 || ch == 0x7f) || dotDot && !jvmOwn;
        if (!inCache && derived) {
          derivedOutside.add(call.line());
        }
        if (inCache && (dotDot || raw.indexOf('%') >= 0)) {
          oddInside.add(call.line());
        }
        if (writes && !inCache && !jvmPerfData(raw) && !raw.startsWith("/proc/")) {
          writtenOutside.add(call.line());
        }
        if (call.name().startsWith("rename") && inCache && raw.startsWith(cacheDir.resolve("blobs").toString())) {
          installs++;
        }
      }
    }
    System.out.println("trace: " + calls.size() + " file-system calls, " + installs + " blob installs");
    softly.assertThat(installs).as("blob installs seen in the trace (is strace following the mirror's threads?)")
        .isPositive();
    softly.assertThat(derivedOutside).as("paths derived from requests, outside the cache directory").isEmpty();
    softly.assertThat(oddInside).as("paths with '..' or '%%' inside the cache directory").isEmpty();
    softly.assertThat(writtenOutside).as("files created, written, renamed or deleted outside the cache directory")
        .isEmpty();
    figures.pathsFromRequestsOutside = derivedOutside.size();
    figures.writtenOutside = writtenOutside.size();
    figures.connects = connects.size();
    figures.localConnects = (int) connects.stream().filter(line -> line.contains("sa_family=AF_UNIX")).count();
    figures.foreignConnects = connects.stream().filter(line -> !toUpstream(line, upstreamPort)).toList();
    softly.assertThat(connects).as("connections the mirror opened (is connect traced?)").isNotEmpty();
    softly.assertThat(figures.foreignConnects).as("connections to anything but the upstream 127.0.0.1:%d",
        upstreamPort).isEmpty();
  }

  private static final Pattern INET = Pattern.compile(
      "sa_family=AF_INET6?, sin6?_port=htons\\((\\d+)\\).*?(?:inet_addr\\(\"([^\"]+)\"\\)|inet_pton\\(AF_INET6, \"([^\"]+)\")");

  /**
   * Whether a traced connect() went to the upstream, or to no host at all: an IPv4 or IPv6
   * (v4-mapped) address and the upstream's port; a local socket (the C library asks the name
   * service cache about the JVM's user); AF_UNSPEC, which only dissolves a datagram socket's
   * association. Anything else is another host.
   */
  private static boolean toUpstream(String line, int upstreamPort) {
    if (line.contains("sa_family=AF_UNSPEC") || line.contains("sa_family=AF_UNIX")) {
      return true;
    }
    Matcher m = INET.matcher(line);
    if (!m.find()) {
      return false;
    }
    String address = m.group(2) != null ? m.group(2) : m.group(3);
    return Integer.parseInt(m.group(1)) == upstreamPort
        && (address.equals("127.0.0.1") || address.equals("::ffff:127.0.0.1"));
  }

  /**
   * HotSpot's perf-data file: {@code /tmp/hsperfdata_<user>/<pid>}, which it opens by the bare pid
   * after changing into that directory.
   */
  private static boolean jvmPerfData(String raw) {
    return raw.startsWith("/tmp/hsperfdata_") || raw.matches("\\d+");
  }
}
