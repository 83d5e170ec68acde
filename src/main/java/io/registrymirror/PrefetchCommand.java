package io.registrymirror;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code java -jar registry-mirror.jar prefetch [--mirror URL] [--token T] [--platform P]...
 * IMAGE...}: asks a running mirror to pull images into its cache, follows each job until it ends
 * with a progress bar (redrawn in place on a terminal, a line now and then otherwise), and exits
 * non-zero when any image could not be prefetched.
 */
final class PrefetchCommand {

  static final String USAGE = """
      usage: java -jar registry-mirror.jar prefetch [--mirror URL] [--token TOKEN]
                                                   [--platform OS/ARCH[/VARIANT]]... IMAGE...

      Asks a running mirror to pull each IMAGE (e.g. docker.io/library/nginx:1.27) into its
      cache, and shows its progress. --mirror defaults to http://127.0.0.1:5000; --token to
      MIRROR_ADMIN_TOKEN. Without --platform every platform of a multi-platform image is pulled.
      Exits 0 when every image is in the cache, 1 when any failed, 2 on a usage error.
      """;

  private static final String TOKEN_ENV = "MIRROR_ADMIN_TOKEN";
  private static final Duration POLL = Duration.ofMillis(500);
  /** How often a line is printed per running job when the output is no terminal. */
  private static final Duration PLAIN_EVERY = Duration.ofSeconds(5);
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(30);
  /** Status requests that may fail in a row (a restarting mirror) before the job counts as failed. */
  private static final int POLL_FAILURES = 20;
  private static final int BAR_WIDTH = 24;

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();
  private final PrintStream out;
  private final boolean terminal;
  private final URI mirror;
  private final String token;

  /** One image: its job's URL once accepted, its latest status, and how it ended. */
  private static final class Tracked {
    final String image;
    URI status;
    JsonObject last = new JsonObject();
    String error;
    boolean ended;
    int failures;

    Tracked(String image) {
      this.image = image;
    }

    boolean ok() {
      return ended && error == null;
    }
  }

  private PrefetchCommand(PrintStream out, boolean terminal, URI mirror, String token) {
    this.out = out;
    this.terminal = terminal;
    this.mirror = mirror;
    this.token = token;
  }

  /** Runs the command; returns the exit status. */
  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err, boolean terminal) {
    String mirror = "http://127.0.0.1:5000";
    String token = env.get(TOKEN_ENV);
    List<String> platforms = new ArrayList<>();
    List<String> images = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      switch (arg) {
        case "--help", "-h" -> {
          out.print(USAGE);
          return 0;
        }
        case "--mirror", "--token", "--platform" -> {
          if (i + 1 >= args.length) {
            err.print(arg + " needs a value\n" + USAGE);
            return 2;
          }
          String value = args[++i];
          switch (arg) {
            case "--mirror" -> mirror = value;
            case "--token" -> token = value;
            default -> platforms.add(value);
          }
        }
        default -> {
          if (arg.startsWith("-")) {
            err.print("unknown option " + arg + "\n" + USAGE);
            return 2;
          }
          images.add(arg);
        }
      }
    }
    if (images.isEmpty()) {
      err.print("name at least one image\n" + USAGE);
      return 2;
    }
    URI base;
    try {
      base = URI.create(mirror.endsWith("/") ? mirror : mirror + "/");
      if (!"http".equals(base.getScheme()) && !"https".equals(base.getScheme()) || base.getHost() == null) {
        throw new IllegalArgumentException("not an http(s) URL");
      }
    } catch (IllegalArgumentException e) {
      err.print("--mirror: " + mirror + " is not a URL like http://mirror.example:5000\n");
      return 2;
    }
    return new PrefetchCommand(out, terminal, base, token == null || token.isBlank() ? null : token.trim())
        .prefetch(images, platforms);
  }

  private int prefetch(List<String> images, List<String> platforms) {
    long started = System.nanoTime();
    Map<String, Tracked> jobs = new LinkedHashMap<>();
    for (String image : images) {
      Tracked job = new Tracked(image);
      jobs.put(image, job);
      submit(job, platforms);
      if (job.ended && !terminal) {
        out.println(line(job));
      }
    }
    int drawn = 0;
    long lastPlain = 0;
    while (jobs.values().stream().anyMatch(j -> !j.ended)) {
      sleep(POLL);
      for (Tracked job : jobs.values()) {
        if (!job.ended) {
          poll(job);
          if (job.ended && !terminal) {
            out.println(line(job));
          }
        }
      }
      if (terminal) {
        drawn = redraw(jobs.values(), drawn);
      } else if (System.nanoTime() - lastPlain >= PLAIN_EVERY.toNanos()) {
        lastPlain = System.nanoTime();
        jobs.values().stream().filter(j -> !j.ended).forEach(j -> out.println(line(j)));
      }
    }
    if (terminal) {
      redraw(jobs.values(), drawn);
    }
    return summary(jobs.values(), Duration.ofNanos(System.nanoTime() - started));
  }

  private void submit(Tracked job, List<String> platforms) {
    JsonObject body = new JsonObject().put("image", job.image);
    if (!platforms.isEmpty()) {
      body.put("platforms", new JsonArray(new ArrayList<>(platforms)));
    }
    try {
      HttpResponse<String> response = send(HttpRequest.newBuilder(mirror.resolve("api/v1/prefetch"))
          .header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(body.encode())));
      if (response.statusCode() != 202) {
        fail(job, response);
        return;
      }
      String location = response.headers().firstValue("Location").orElse(null);
      if (location == null) {
        job.error = "the mirror accepted the job but named no status URL";
        job.ended = true;
        return;
      }
      job.status = mirror.resolve(location);
      job.last = new JsonObject(response.body());
      if (!terminal) {
        out.println(line(job));
      }
    } catch (IOException | RuntimeException e) {
      job.error = "cannot reach the mirror at " + mirror + ": " + describe(e);
      job.ended = true;
    }
  }

  private void poll(Tracked job) {
    try {
      HttpResponse<String> response = send(HttpRequest.newBuilder(job.status).GET());
      if (response.statusCode() != 200) {
        fail(job, response);
        return;
      }
      job.failures = 0;
      job.last = new JsonObject(response.body());
      String state = job.last.getString("state", "");
      if (state.equals("done") || state.equals("failed")) {
        job.ended = true;
        job.error = state.equals("failed") ? job.last.getString("error", "failed") : null;
      }
    } catch (IOException | RuntimeException e) {
      if (++job.failures >= POLL_FAILURES) {
        job.error = "lost the mirror at " + mirror + ": " + describe(e);
        job.ended = true;
      }
    }
  }

  private HttpResponse<String> send(HttpRequest.Builder request) throws IOException {
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    try {
      return http.send(request.timeout(REQUEST_TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  /** A refusal: the OCI error's detail when the mirror sent one. */
  private static void fail(Tracked job, HttpResponse<String> response) {
    String detail = "HTTP " + response.statusCode();
    try {
      JsonObject error = new JsonObject(response.body()).getJsonArray("errors").getJsonObject(0);
      detail = error.getString("code") + ": " + error.getString("detail", error.getString("message"));
    } catch (RuntimeException notOci) {
      // the status says enough
    }
    job.error = detail;
    job.ended = true;
  }

  /** Moves the cursor back over the lines drawn last time and draws them again. */
  private int redraw(Iterable<Tracked> jobs, int drawn) {
    StringBuilder screen = new StringBuilder();
    if (drawn > 0) {
      screen.append("\033[").append(drawn).append('F');
    }
    int lines = 0;
    for (Tracked job : jobs) {
      screen.append("\033[2K").append(line(job)).append('\n');
      lines++;
    }
    out.print(screen);
    out.flush();
    return lines;
  }

  private String line(Tracked job) {
    JsonObject blobs = job.last.getJsonObject("blobs", new JsonObject());
    JsonObject bytes = job.last.getJsonObject("bytes", new JsonObject());
    long done = bytes.getLong("done", 0L);
    long total = bytes.getLong("total", 0L);
    String state = job.error != null ? "failed" : job.last.getString("state", "queued");
    String figures = String.format(Locale.ROOT, "%s %d/%d blobs %s/%s", bar(done, total, state),
        blobs.getInteger("done", 0), blobs.getInteger("total", 0), size(done), size(total));
    String tail = job.error != null ? "failed: " + job.error : state;
    return job.image + "  " + figures + "  " + tail;
  }

  private static String bar(long done, long total, String state) {
    int filled = state.equals("done") ? BAR_WIDTH : total <= 0 ? 0 : (int) (BAR_WIDTH * Math.min(done, total) / total);
    return "[" + "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled) + "]";
  }

  private int summary(Iterable<Tracked> jobs, Duration took) {
    int ok = 0;
    int failed = 0;
    int blobs = 0;
    long bytes = 0;
    for (Tracked job : jobs) {
      if (job.ok()) {
        ok++;
        blobs += job.last.getJsonObject("blobs", new JsonObject()).getInteger("done", 0);
        bytes += job.last.getJsonObject("bytes", new JsonObject()).getLong("done", 0L);
      } else {
        failed++;
        if (terminal) {
          out.println(job.image + ": " + job.error);
        }
      }
    }
    out.printf(Locale.ROOT, "prefetched %d of %d image(s): %d blobs, %s in %.1f s%s%n", ok, ok + failed, blobs,
        size(bytes), took.toMillis() / 1000.0, failed == 0 ? "" : "; " + failed + " failed");
    return failed == 0 ? 0 : 1;
  }

  private static String size(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double value = bytes;
    int unit = -1;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }

  private static String describe(Exception e) {
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  /** The command's own thread, polling a status URL between redraws: no event loop waits on it. */
  private static void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
