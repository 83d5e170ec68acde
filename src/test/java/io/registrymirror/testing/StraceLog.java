package io.registrymirror.testing;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A process traced by {@code strace}: the command that starts it so, the way to stop it, and the
 * calls read back from the trace with their path arguments unescaped. Only the calls that touch
 * files by name and {@code connect} are traced (with {@code --seccomp-bpf}, only those stop the
 * process, not every read and write).
 */
public final class StraceLog {

  private static final String TRACED_CALLS =
      "open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,connect";
  private static final Set<String> TRACED = Set.of(TRACED_CALLS.split(","));
  private static final Pattern CALL = Pattern.compile("^\\d+\\s+(\\w+)\\((.*)$");
  private static final Pattern QUOTED = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"");

  private StraceLog() {
  }

  /** One traced call: its name, its arguments as strace wrote them, and the whole line. */
  public record Call(String name, String args, String line) {

    /**
     * The quoted arguments, unescaped. In the *at calls a relative path is relative to the
     * argument before it: AT_FDCWD or a directory descriptor, which the trace does not resolve.
     */
    public List<PathArgument> paths() {
      boolean dirfdCall = name.endsWith("at") || name.endsWith("at2");
      List<PathArgument> paths = new ArrayList<>();
      Matcher q = QUOTED.matcher(args);
      while (q.find()) {
        String before = args.substring(0, q.start()).replaceAll(",\\s*$", "");
        boolean relativeToFd = dirfdCall && !before.substring(before.lastIndexOf(',') + 1).trim().equals("AT_FDCWD");
        paths.add(new PathArgument(unescape(q.group(1)), relativeToFd));
      }
      return paths;
    }
  }

  /** A path as the process passed it, and whether it is relative to a directory descriptor. */
  public record PathArgument(String raw, boolean relativeToFd) {
  }

  public static boolean available() {
    return Arrays.stream(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, "strace")));
  }

  /** What goes before the traced command: follow every thread, write the trace to {@code trace}. */
  public static List<String> command(Path trace) {
    return List.of("strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=" + TRACED_CALLS, "-o", trace.toString());
  }

  /**
   * The traced calls in {@code trace}, skipping resumed calls (their arguments were on the
   * unfinished line), signals and exits.
   */
  public static List<Call> read(Path trace) throws IOException {
    List<Call> calls = new ArrayList<>();
    for (String line : Files.readAllLines(trace, ISO_8859_1)) {
      Matcher m = CALL.matcher(line);
      if (m.matches() && TRACED.contains(m.group(1))) {
        calls.add(new Call(m.group(1), m.group(2), line));
      }
    }
    return calls;
  }

  /**
   * Stops a traced mirror. Killing strace would only detach it and leave the JVM running, so the
   * JVM goes first, with a SIGTERM so that its shutdown is traced too, and strace exits with it.
   */
  public static void stop(MirrorProcess mirror) throws Exception {
    ProcessHandle strace = ProcessHandle.of(mirror.pid()).orElse(null);
    if (strace != null) {
      for (ProcessHandle jvm : strace.children().toList()) {
        jvm.destroy();
        try {
          jvm.onExit().get(30, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
          jvm.destroyForcibly();
        }
      }
      try {
        strace.onExit().get(30, TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        // close() below kills it
      }
    }
    mirror.close();
  }

  /** strace's C-style escapes: \" \\ \n \t \r \v \f and octal. */
  static String unescape(String s) {
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch != '\\' || i + 1 >= s.length()) {
        out.append(ch);
        continue;
      }
      char next = s.charAt(++i);
      switch (next) {
        case 'n' -> out.append('\n');
        case 't' -> out.append('\t');
        case 'r' -> out.append('\r');
        case 'v' -> out.append('\u000b');
        case 'f' -> out.append('\f');
        case 'x' -> {
          int end = Math.min(s.length(), i + 3);
          out.append((char) Integer.parseInt(s.substring(i + 1, end), 16));
          i = end - 1;
        }
        default -> {
          if (next >= '0' && next <= '7') {
            int end = i;
            while (end < s.length() && end < i + 3 && s.charAt(end) >= '0' && s.charAt(end) <= '7') {
              end++;
            }
            out.append((char) Integer.parseInt(s.substring(i, end), 8));
            i = end - 1;
          } else {
            out.append(next);
          }
        }
      }
    }
    return out.toString();
  }
}
