package io.registrymirror.it;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.registrymirror.testing.Forwarder;
import io.registrymirror.testing.Forwarder.Seen;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import io.registrymirror.testing.MirrorProcess;
import io.registrymirror.testing.RawHttp;
import io.registrymirror.testing.ReferenceRegistry;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Abuse: more than ten thousand generated malformed or hostile requests against the mirror running
 * as its own process under {@code strace}. Every answer must be a clean refusal (never a 5xx, always
 * the OCI error JSON when it has a body, never a body on a HEAD); invalid requests must never reach
 * upstream; no file derived from a request may be touched outside the cache directory, and nothing
 * may be written outside it at all; the mirror connects to no host but its upstream; a thousand
 * slow clients are held only briefly and only so many, while pulls go on; and afterwards the
 * mirror still serves exact pulls. The figures are printed in one block, as the README lists them.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class AbuseTest {

  /** The generator's seed: a failure names a request that the same seed generates again. */
  private static final long SEED = 0xAB05EL;
  private static final int INVALID_REQUESTS = 6_000;
  private static final int MISSING_REQUESTS = 4_500;
  private static final int CLIENTS = 16;
  /** Put into names, tags and headers so that anything derived from them is recognisable in a trace. */
  private static final String MARKER = "zqxabuse";
  private static final String TRACED_CALLS =
      "open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,connect";
  private static final Set<String> TRACED = Set.of(TRACED_CALLS.split(","));

  /** The error codes of the distribution spec, and those the mirror adds for ranges and tags. */
  /** The slow clients: how many, the listener's limits they meet, and where they come from. */
  private static final int SLOW_CLIENTS = 1_000;
  private static final int SLOW_PER_CLIENT = 200;
  private static final Duration HEADER_TIMEOUT = Duration.ofSeconds(4);
  private static final String SLOW_ADDRESS = "127.0.0.2";

  private static final Set<String> KNOWN_CODES = Set.of("BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID",
      "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID",
      "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED",
      "UNSUPPORTED", "TOOMANYREQUESTS", "RANGE_INVALID", "PAGINATION_NUMBER_INVALID", "TAG_INVALID");

  /** The grammars of the distribution spec, written out here rather than taken from the code under test. */
  private static final Pattern NAME = Pattern.compile(
      "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*");
  private static final Pattern TAG = Pattern.compile("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  private static final Pattern DIGEST = Pattern.compile("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}");

  private static ReferenceRegistry registry;
  /** Its paths are the targets of hostile ranges, headers and methods. */
  private static Image image;
  /** Never requested before the final pull, so that pull goes upstream after all the abuse. */
  private static Image untouched;

  @BeforeAll
  static void seed() throws Exception {
    assumeTrue(ReferenceRegistry.available(), "docker-registry is not installed");
    assumeTrue(onPath("strace"), "strace is not installed");
    registry = ReferenceRegistry.start();
    ImageSeeder seeder = new ImageSeeder(registry.url(), 7);
    image = seeder.pushImage("abuse/app", "1.0", 2, 40_000, "docker");
    untouched = seeder.pushImage("abuse/fresh", "2.0", 2, 40_000, "oci");
  }

  @AfterAll
  static void stopRegistry() {
    if (registry != null) {
      registry.close();
      registry = null;
    }
  }

  @Test
  void hostileRequestsAreRefusedCleanlyAndNeverEscapeTheCache(@TempDir Path work) throws Exception {
    Path cache = work.resolve("cache");
    Path trace = work.resolve("mirror.strace");
    SoftAssertions softly = new SoftAssertions();
    Figures figures = new Figures();
    try (Forwarder upstream = Forwarder.start(registry.port())) {
      // With --seccomp-bpf only the traced calls stop the mirror, not every read and write.
      MirrorProcess mirror = MirrorProcess.start(upstream.url(), cache, work,
          List.of("strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=" + TRACED_CALLS, "-o", trace.toString()),
          "limits:\n  headerTimeout: " + HEADER_TIMEOUT.toSeconds() + "s\n  connectionsPerClient: " + SLOW_PER_CLIENT
              + "\n");
      try {
        Generator generate = new Generator(new SplittableRandom(SEED));
        Client client = new Client(mirror.hostPort());

        List<Case> invalid = generate.invalid(INVALID_REQUESTS);
        List<Case> missing = generate.validButMissing(MISSING_REQUESTS);
        softly.assertThat(invalid.size() + missing.size()).isGreaterThanOrEqualTo(10_000);

        // Phase 1: names, tags, digests, ranges, methods, pagination... that are invalid. Nothing
        // about them may reach upstream.
        check(softly, figures, "invalid", invalid, client.sendAll(invalid));
        softly.assertThat(upstream.arrived("GET", ".*") + upstream.arrived("HEAD", ".*"))
            .as("upstream requests caused by invalid requests, e.g. %s",
                upstream.seen().stream().limit(10).map(s -> s.method() + " " + s.uri()).toList())
            .isZero();

        // Phase 2: valid requests for things upstream lacks, and valid requests with hostile
        // headers. They may go upstream, but only as valid requests carrying nothing of the client's.
        check(softly, figures, "valid but missing", missing, client.sendAll(missing));
        softly.assertThat(upstream.seen().stream().map(AbuseTest::invalidUpstreamRequest)
                .filter(problem -> problem != null).limit(20).toList())
            .as("invalid requests sent upstream")
            .isEmpty();

        // Phase 3: slow clients hold what the limits let them, only until the header deadline,
        // and a pull from another address meanwhile takes as long as without them.
        pullIntact(softly, client, image);
        figures.pullAlone = pullIntact(softly, client, image);
        slowClients(softly, figures, mirror.hostPort(), client);

        // Afterwards the mirror still serves exact pulls, from its cache and from upstream.
        pullIntact(softly, client, image);
        pullIntact(softly, client, untouched);
        figures.mirrorAlive = ProcessHandle.of(mirror.pid()).stream().flatMap(ProcessHandle::children)
            .anyMatch(ProcessHandle::isAlive);
        softly.assertThat(figures.mirrorAlive).as("the mirror is still running").isTrue();
      } finally {
        stopTraced(mirror);
      }
      checkTrace(softly, figures, trace, cache, upstream.port());
    }
    figures.print();
    softly.assertAll();
  }

  /** What the suite tried and saw, printed in one block for the README's security section. */
  private static final class Figures {
    final Map<String, Integer> tried = new TreeMap<>();
    int serverErrors;
    boolean mirrorAlive;
    int pathsFromRequestsOutside;
    int writtenOutside;
    int connects;
    int localConnects;
    List<String> foreignConnects = List.of();
    int slowHeld;
    int slowRefused;
    int slowOpenAfterDeadline;
    long slowAllClosedMs = -1;
    long pullAlone;
    long pullDuringSlow;

    void print() {
      int total = tried.values().stream().mapToInt(Integer::intValue).sum();
      StringBuilder b = new StringBuilder("\n==== abuse suite figures ====\n");
      b.append(String.format("requests tried: %,d%n", total));
      tried.forEach((kind, n) -> b.append(String.format("  %-36s %,6d%n", kind, n)));
      b.append(String.format("answers with a 5xx status: %d%n", serverErrors));
      b.append(String.format("mirror processes killed: %d%n", mirrorAlive ? 0 : 1));
      b.append(String.format("files touched outside the cache with a path from a request: %d;"
          + " files written outside the cache: %d%n", pathsFromRequestsOutside, writtenOutside));
      b.append(String.format("connections to hosts other than the upstream: %d (of %d connect calls;"
          + " %d to local sockets, e.g. the name service cache)%n", foreignConnects.size(), connects, localConnects));
      b.append(String.format("slow clients (a byte a second, from one address): %,d opened, %d held at once"
          + " (limits.connectionsPerClient: %d), %d refused at once, %d still open after limits.headerTimeout"
          + " (%ds); all closed %d ms after opening%n", SLOW_CLIENTS, slowHeld, SLOW_PER_CLIENT, slowRefused,
          slowOpenAfterDeadline, HEADER_TIMEOUT.toSeconds(), slowAllClosedMs));
      b.append(String.format("a pull from another address: %d ms alone, %d ms while the slow clients were held%n",
          pullAlone, pullDuringSlow));
      b.append("==============================");
      System.out.println(b);
    }
  }

  /**
   * Opens {@link #SLOW_CLIENTS} connections from {@link #SLOW_ADDRESS} that each send part of a
   * request line and then a byte a second, never finishing their headers.
   */
  private static void slowClients(SoftAssertions softly, Figures figures, String hostPort, Client client)
      throws Exception {
    RawHttp slow = new RawHttp(hostPort, SLOW_ADDRESS);
    List<Socket> sockets = new ArrayList<>();
    ScheduledExecutorService drip = Executors.newSingleThreadScheduledExecutor();
    try {
      long opened = System.nanoTime();
      for (int i = 0; i < SLOW_CLIENTS; i++) {
        Socket s = slow.open();
        s.setSoTimeout(1);
        sockets.add(s);
        write(s, "GET /v2/ HTTP/1.1\r\nX-Slow: ");
      }
      drip.scheduleAtFixedRate(() -> sockets.forEach(s -> write(s, "z")), 1, 1, TimeUnit.SECONDS);
      // Those over the cap are closed as soon as they are accepted.
      figures.slowHeld = openAfter(sockets, opened + TimeUnit.SECONDS.toNanos(3), SLOW_PER_CLIENT);
      figures.slowRefused = SLOW_CLIENTS - figures.slowHeld;
      figures.pullDuringSlow = pullIntact(softly, client, image);

      figures.slowOpenAfterDeadline = openAfter(sockets, opened + HEADER_TIMEOUT.plusSeconds(3).toNanos(), 0);
      if (figures.slowOpenAfterDeadline == 0) {
        figures.slowAllClosedMs = (System.nanoTime() - opened) / 1_000_000;
      }
    } finally {
      drip.shutdownNow();
      for (Socket s : sockets) {
        s.close();
      }
    }
    softly.assertThat(figures.slowHeld).as("slow connections held at once").isEqualTo(SLOW_PER_CLIENT);
    softly.assertThat(figures.slowOpenAfterDeadline).as("slow connections open after the header deadline")
        .isZero();
    softly.assertThat(figures.pullDuringSlow).as("ms for a pull while slow clients are held, %d ms alone",
        figures.pullAlone).isLessThan(Math.max(2_000, 5 * figures.pullAlone));
  }

  /** How many sockets are open once no more than {@code expected} are, or at {@code deadline}. */
  private static int openAfter(List<Socket> sockets, long deadline, int expected) throws InterruptedException {
    int open = open(sockets);
    while (open > expected && System.nanoTime() < deadline) {
      TimeUnit.MILLISECONDS.sleep(100);
      open = open(sockets);
    }
    return open;
  }

  private static void write(Socket socket, String text) {
    try {
      socket.getOutputStream().write(text.getBytes(ISO_8859_1));
    } catch (IOException closed) {
      // closed by the mirror: what the limits are for
    }
  }

  /** How many of the sockets the mirror has not closed: a read that times out rather than ends. */
  private static int open(List<Socket> sockets) {
    int open = 0;
    for (Socket s : sockets) {
      try {
        if (!s.isClosed() && s.getInputStream().read() >= 0) {
          open++; // an answer: not what a slow client gets, but the connection is open
        }
      } catch (SocketTimeoutException stillOpen) {
        open++;
      } catch (IOException reset) {
        // closed
      }
    }
    return open;
  }

  // ---------------------------------------------------------------------------------------------
  // Checking answers

  private static void check(SoftAssertions softly, Figures figures, String phase, List<Case> cases,
      List<Reply> replies) {
    Map<String, List<String>> failures = new TreeMap<>();
    Map<String, Integer> perCategory = new TreeMap<>();
    for (int i = 0; i < cases.size(); i++) {
      Case c = cases.get(i);
      perCategory.merge(c.category(), 1, Integer::sum);
      figures.tried.merge(c.category(), 1, Integer::sum);
      figures.serverErrors += replies.get(i).status() >= 500 ? 1 : 0;
      String problem = violation(c, replies.get(i));
      if (problem != null) {
        failures.computeIfAbsent(c.category(), k -> new ArrayList<>())
            .add(problem + "\n      request: " + excerpt(c.wire()) + "\n      answer:  " + replies.get(i));
      }
    }
    System.out.println(phase + ": " + cases.size() + " requests " + perCategory);
    failures.forEach((category, list) -> softly.fail("%s, %s: %d of %d requests failed, e.g.%n    %s",
        phase, category, list.size(), perCategory.get(category),
        String.join("\n    ", list.subList(0, Math.min(3, list.size())))));
  }

  /** The invariants every answer must keep, then the case's own expectation; null when all hold. */
  private static String violation(Case c, Reply r) {
    if (r.failure() != null) {
      return c.expect().allowsNoAnswer() ? null : "no complete answer: " + r.failure();
    }
    if (r.status() >= 500) {
      return "server error " + r.status();
    }
    boolean head = c.method().equals("HEAD");
    if (head && r.body().length > 0) {
      return "HEAD answered with a body of " + r.body().length + " bytes";
    }
    if (r.status() >= 400) {
      // Every refusal carries the OCI error JSON, those of requests that are not valid HTTP too.
      String error = errorShape(r, head);
      if (error != null) {
        return error;
      }
    }
    return c.expect().violation(c, r);
  }

  /** A 4xx must be the OCI error JSON with a known code (its headers only, for a HEAD). */
  private static String errorShape(Reply r, boolean head) {
    String type = r.header("content-type");
    if (type == null || !type.split(";")[0].trim().equalsIgnoreCase("application/json")) {
      return "error body is not application/json but " + type;
    }
    if (head && r.body().length == 0) {
      return null;
    }
    try {
      JsonArray errors = new JsonObject(new String(r.body(), UTF_8))
          .getJsonArray("errors");
      if (errors == null || errors.isEmpty()) {
        return "error JSON without errors";
      }
      for (int i = 0; i < errors.size(); i++) {
        JsonObject e = errors.getJsonObject(i);
        if (!KNOWN_CODES.contains(e.getString("code")) || e.getString("message") == null) {
          return "error JSON with an unknown code or no message";
        }
      }
      return null;
    } catch (RuntimeException e) {
      return "error body is not the OCI error JSON: " + e.getMessage();
    }
  }

  /** What one case expects of its answer beyond the invariants; null when it holds. */
  private interface Expectation {
    String violation(Case c, Reply r);

    /** Only a request whose framing is broken may be answered by closing the connection. */
    default boolean allowsNoAnswer() {
      return false;
    }
  }

  /** A refusal: a 4xx and, when it is the OCI JSON, one of these codes (any known one if none given). */
  private static Expectation refused(String... codes) {
    return (c, r) -> {
      if (r.status() < 400) {
        return "accepted with " + r.status() + ", expected a refusal";
      }
      String code = r.code();
      if (codes.length > 0 && code != null && !Arrays.asList(codes).contains(code)) {
        return "refused with " + code + ", expected one of " + Arrays.toString(codes);
      }
      return null;
    };
  }

  /** A refusal, or a dropped connection, for a request whose body cannot be framed. */
  private static Expectation refusedOrDropped() {
    Expectation refused = refused();
    return new Expectation() {
      @Override
      public String violation(Case c, Reply r) {
        return refused.violation(c, r);
      }

      @Override
      public boolean allowsNoAnswer() {
        return true;
      }
    };
  }

  /** No answer at all: the connection is closed at once. */
  private static Expectation dropped() {
    return new Expectation() {
      @Override
      public String violation(Case c, Reply r) {
        return "answered " + r.status() + ", expected the connection to be closed without an answer";
      }

      @Override
      public boolean allowsNoAnswer() {
        return true;
      }
    };
  }

  /** Not found upstream: a 404 with one of these codes. */
  private static Expectation unknown(String... codes) {
    return (c, r) -> r.status() == 404 && (r.code() == null || Arrays.asList(codes).contains(r.code()))
        ? null : "expected 404 " + Arrays.toString(codes);
  }

  /** Only the invariants. */
  private static Expectation anyAnswer() {
    return (c, r) -> null;
  }

  /**
   * Existing content: a 200 or 206 must carry exactly its bytes (the range named by
   * Content-Range), a 416 must be RANGE_INVALID; anything else must still be a clean answer.
   */
  private static Expectation content(byte[] bytes) {
    return (c, r) -> {
      boolean head = c.method().equals("HEAD");
      if (r.status() == 200) {
        if (head) {
          return r.contentLength() == bytes.length ? null : "HEAD Content-Length " + r.contentLength();
        }
        return Arrays.equals(r.body(), bytes) ? null : "200 with other bytes than the content";
      }
      if (r.status() == 206) {
        Matcher m = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+)").matcher(String.valueOf(r.header("content-range")));
        if (!m.matches() || Long.parseLong(m.group(3)) != bytes.length) {
          return "206 with Content-Range " + r.header("content-range");
        }
        int from = Integer.parseInt(m.group(1));
        int to = Integer.parseInt(m.group(2));
        if (head) {
          return null;
        }
        return to < bytes.length && Arrays.equals(r.body(), Arrays.copyOfRange(bytes, from, to + 1))
            ? null : "206 with other bytes than the range";
      }
      if (r.status() == 416) {
        return r.code() == null && head || "RANGE_INVALID".equals(r.code()) ? null : "416 without RANGE_INVALID";
      }
      return r.status() == 304 || r.status() >= 400 ? null : "unexpected status " + r.status();
    };
  }

  /** Why an upstream request is not a valid read of the distribution API, or null when it is. */
  private static String invalidUpstreamRequest(Seen seen) {
    for (Map.Entry<String, String> h : seen.headers()) {
      if ((h.getKey() + h.getValue()).toLowerCase(Locale.ROOT).contains(MARKER)) {
        return "client header passed upstream: " + h + " in " + seen.uri();
      }
    }
    String uri = seen.uri();
    int q = uri.indexOf('?');
    String path = q < 0 ? uri : uri.substring(0, q);
    String query = q < 0 ? null : uri.substring(q + 1);
    if (!path.startsWith("/v2/")) {
      return "not an API path: " + uri;
    }
    String rest = path.substring(4);
    if (rest.endsWith("/tags/list")) {
      String name = rest.substring(0, rest.length() - "/tags/list".length());
      Matcher listing = Pattern.compile("(?:n=(\\d{1,5}))?&?(?:last=(.*))?").matcher(query == null ? "" : query);
      boolean queryOk = listing.matches() && (listing.group(1) == null || Integer.parseInt(listing.group(1)) <= 10_000)
          && (listing.group(2) == null || TAG.matcher(listing.group(2)).matches());
      return isValidName(name) && queryOk ? null : "invalid tag listing: " + uri;
    }
    Matcher m = Pattern.compile("(.+)/(manifests|blobs|referrers)/([^/]+)").matcher(rest);
    if (!m.matches() || !isValidName(m.group(1))) {
      return "invalid name or endpoint: " + uri;
    }
    String ref = m.group(3);
    boolean refOk = DIGEST.matcher(ref).matches() || m.group(2).equals("manifests") && TAG.matcher(ref).matches();
    boolean queryOk = query == null
        || m.group(2).equals("referrers") && query.matches("artifactType=[A-Za-z0-9%._+-]+");
    return refOk && queryOk ? null : "invalid reference or query: " + uri;
  }

  private static boolean isValidName(String name) {
    return name.length() <= 255 && NAME.matcher(name).matches();
  }

  /**
   * Manifest by tag and by digest, and every blob, through the mirror: exactly the pushed bytes.
   * Returns how long it took, in milliseconds.
   */
  private static long pullIntact(SoftAssertions softly, Client client, Image img) {
    long started = System.nanoTime();
    String base = "/v2/" + img.repo();
    List<String[]> accept = List.<String[]>of(new String[] {"Accept", img.mediaType()});
    for (String ref : List.of(img.tag(), img.manifestDigest())) {
      Reply r = client.send(new Case("pull", "GET", base + "/manifests/" + ref, accept, null, null, anyAnswer()));
      softly.assertThat(r.status()).as("pull %s:%s", img.repo(), ref).isEqualTo(200);
      softly.assertThat(r.body()).as("manifest %s:%s", img.repo(), ref).isEqualTo(img.manifest());
      softly.assertThat(r.header("docker-content-digest")).isEqualTo(img.manifestDigest());
    }
    img.blobs().forEach((digest, bytes) -> {
      Reply r = client.send(new Case("pull", "GET", base + "/blobs/" + digest, List.of(), null, null, anyAnswer()));
      softly.assertThat(r.status()).as("pull blob %s", digest).isEqualTo(200);
      softly.assertThat(r.body()).as("blob %s", digest).isEqualTo(bytes);
    });
    return (System.nanoTime() - started) / 1_000_000;
  }

  // ---------------------------------------------------------------------------------------------
  // The file-system trace

  private static final Pattern CALL = Pattern.compile("^\\d+\\s+(\\w+)\\((.*)$");
  private static final Pattern QUOTED = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Pattern WRITE_FLAGS = Pattern.compile("O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND");
  private static final Set<String> MUTATING = Set.of("creat", "mkdir", "mkdirat", "rename", "renameat",
      "renameat2", "unlink", "unlinkat");

  /**
   * Every path the mirror's process touched, from the strace log. Paths derived from a request
   * (a marker, a percent sign, a dot-dot segment, a control character) may only be inside the
   * cache; writes, creations, renames and deletions may only be inside the cache, apart from the
   * JVM's own perf-data file and its own /proc entries.
   */
  private static void checkTrace(SoftAssertions softly, Figures figures, Path trace, Path cache, int upstreamPort)
      throws IOException {
    Path cacheDir = cache.toAbsolutePath().normalize();
    Path cwd = Path.of("").toAbsolutePath();
    List<String> jvmHomes = List.of(Path.of(System.getProperty("java.home")).toString(),
        Path.of(System.getProperty("java.home")).toRealPath().toString());
    List<String> derivedOutside = new ArrayList<>();
    List<String> oddInside = new ArrayList<>();
    List<String> writtenOutside = new ArrayList<>();
    List<String> connects = new ArrayList<>();
    int calls = 0;
    int installs = 0;
    for (String line : Files.readAllLines(trace, ISO_8859_1)) {
      Matcher m = CALL.matcher(line);
      if (!m.matches() || !TRACED.contains(m.group(1))) {
        continue; // a resumed call (its arguments were on the unfinished line), a signal, an exit
      }
      calls++;
      String call = m.group(1);
      String args = m.group(2);
      if (call.equals("connect")) {
        connects.add(line);
        continue;
      }
      boolean writes = MUTATING.contains(call) || WRITE_FLAGS.matcher(args).find();
      boolean dirfdCall = call.endsWith("at") || call.endsWith("at2");
      Matcher q = QUOTED.matcher(args);
      while (q.find()) {
        String raw = unescape(q.group(1));
        // In the *at calls a relative path is relative to the argument before it: AT_FDCWD or a
        // directory descriptor, which the trace does not resolve.
        String before = args.substring(0, q.start()).replaceAll(",\\s*$", "");
        boolean relativeToFd = dirfdCall && !before.substring(before.lastIndexOf(',') + 1).trim().equals("AT_FDCWD");
        Path resolved = raw.startsWith("/") ? Path.of(raw).normalize()
            : relativeToFd ? null : cwd.resolve(raw).normalize();
        boolean inCache = resolved != null && resolved.startsWith(cacheDir) && !resolved.equals(cacheDir)
            || resolved != null && resolved.equals(cacheDir) && call.startsWith("mkdir");
        boolean dotDot = Arrays.asList(raw.split("/")).contains("..");
        boolean jvmOwn = jvmHomes.stream().anyMatch(home -> raw.startsWith(home + "/"));
        boolean derived = raw.toLowerCase(Locale.ROOT).contains(MARKER) || raw.indexOf('%') >= 0
            || raw.chars().anyMatch(ch -> ch < 0x20 || ch == 0x7f) || dotDot && !jvmOwn;
        if (!inCache && derived) {
          derivedOutside.add(line);
        }
        if (inCache && (dotDot || raw.indexOf('%') >= 0)) {
          oddInside.add(line);
        }
        if (writes && !inCache && !jvmPerfData(raw) && !raw.startsWith("/proc/")) {
          writtenOutside.add(line);
        }
        if (call.startsWith("rename") && inCache && raw.startsWith(cacheDir.resolve("blobs").toString())) {
          installs++;
        }
      }
    }
    System.out.println("trace: " + calls + " file-system calls, " + installs + " blob installs");
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

  /** strace's C-style escapes: \" \\ \n \t \r \v \f and octal. */
  private static String unescape(String s) {
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

  /**
   * Stops the traced mirror. Killing strace would only detach it and leave the JVM running, so the
   * JVM goes first, with a SIGTERM so that its shutdown is traced too, and strace exits with it.
   */
  private static void stopTraced(MirrorProcess mirror) throws Exception {
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

  private static boolean onPath(String command) {
    return Arrays.stream(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, command)));
  }

  // ---------------------------------------------------------------------------------------------
  // Requests, answers and the client that exchanges them

  /**
   * One generated request. {@code rawWire}, when set, is sent byte for byte; otherwise the request
   * is made of method, target, headers and body.
   */
  private record Case(String category, String method, String target, List<String[]> headers, byte[] body,
      byte[] rawWire, Expectation expect) {

    /** The request as it goes on the wire when sent over a raw socket. */
    byte[] wire() {
      if (rawWire != null) {
        return rawWire;
      }
      return AbuseTest.wire(method, target, headers, body);
    }
  }

  /** HTTP/1.1 with Connection: close, so the end of the answer is the end of the connection. */
  private static byte[] wire(String method, String target, List<String[]> headers, byte[] body) {
    StringBuilder head = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\n")
        .append("Host: mirror.test\r\n");
    for (String[] h : headers) {
      head.append(h[0]).append(": ").append(h[1]).append("\r\n");
    }
    head.append("Connection: close\r\n\r\n");
    byte[] start = head.toString().getBytes(ISO_8859_1);
    if (body == null) {
      return start;
    }
    byte[] all = Arrays.copyOf(start, start.length + body.length);
    System.arraycopy(body, 0, all, start.length, body.length);
    return all;
  }

  /** An answer: status, headers (lower-case names, first value), body; or why there was none. */
  private record Reply(int status, Map<String, String> headers, byte[] body, String failure) {

    static Reply failed(String why) {
      return new Reply(0, Map.of(), new byte[0], why);
    }

    String header(String name) {
      return headers.get(name);
    }

    long contentLength() {
      String v = headers.get("content-length");
      try {
        return v == null ? -1 : Long.parseLong(v.trim());
      } catch (NumberFormatException e) {
        return -1;
      }
    }

    /** The first OCI error code in the body, if it is the OCI JSON. */
    String code() {
      try {
        return new JsonObject(new String(body, UTF_8))
            .getJsonArray("errors").getJsonObject(0).getString("code");
      } catch (RuntimeException e) {
        return null;
      }
    }

    @Override
    public String toString() {
      if (failure != null) {
        return failure;
      }
      return status + " " + headers.getOrDefault("content-type", "") + " "
          + excerpt(Arrays.copyOf(body, Math.min(body.length, 200)));
    }
  }

  private static String excerpt(byte[] bytes) {
    String s = new String(bytes, 0, Math.min(bytes.length, 300), ISO_8859_1);
    StringBuilder out = new StringBuilder();
    for (char ch : s.toCharArray()) {
      if (ch == '\r') {
        out.append("\\r");
      } else if (ch == '\n') {
        out.append("\\n");
      } else if (ch < 0x20 || ch >= 0x7f) {
        out.append(String.format("\\x%02x", (int) ch));
      } else {
        out.append(ch);
      }
    }
    return bytes.length > 300 ? out + "... (" + bytes.length + " bytes)" : out.toString();
  }

  /**
   * Sends cases with java.net.http where it can express them, and over a raw socket where it
   * refuses (methods other than GET, raw dots, control characters, restricted or oversized
   * headers, bodies) and for every HEAD, whose absence of body only a raw read can prove.
   */
  private static final class Client {

    private final String host;
    private final int port;
    private final HttpClient http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();

    Client(String hostPort) {
      int colon = hostPort.lastIndexOf(':');
      this.host = hostPort.substring(0, colon);
      this.port = Integer.parseInt(hostPort.substring(colon + 1));
    }

    List<Reply> sendAll(List<Case> cases) throws Exception {
      long started = System.nanoTime();
      ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
      try {
        List<Future<Reply>> futures = new ArrayList<>();
        for (Case c : cases) {
          futures.add(pool.submit(() -> send(c)));
        }
        List<Reply> replies = new ArrayList<>();
        for (Future<Reply> f : futures) {
          replies.add(f.get());
        }
        System.out.printf("%d requests in %d ms%n", cases.size(), (System.nanoTime() - started) / 1_000_000);
        return replies;
      } finally {
        pool.shutdownNow();
      }
    }

    Reply send(Case c) {
      HttpRequest request = c.method().equals("GET") && c.rawWire() == null && c.body() == null
          && !c.target().contains("..") && !c.target().contains("#") ? javaRequest(c) : null;
      return request == null ? exchangeRaw(c.wire(), c.method().equals("HEAD")) : exchange(request);
    }

    /**
     * The request for java.net.http, or null when it refuses to send it. (It would also drop a
     * fragment and normalise dot segments, so targets with those never come here.)
     */
    private HttpRequest javaRequest(Case c) {
      try {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://" + host + ":" + port + c.target()))
            .timeout(Duration.ofSeconds(20))
            .GET();
        for (String[] h : c.headers()) {
          b.header(h[0], h[1]);
        }
        return b.build();
      } catch (IllegalArgumentException refused) {
        return null;
      }
    }

    private Reply exchange(HttpRequest request) {
      try {
        HttpResponse<byte[]> r = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
        Map<String, String> headers = new LinkedHashMap<>();
        r.headers().map().forEach((k, v) -> headers.put(k.toLowerCase(Locale.ROOT), v.get(0)));
        return new Reply(r.statusCode(), headers, r.body(), null);
      } catch (IOException e) {
        return Reply.failed(e.toString());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return Reply.failed("interrupted");
      }
    }

    private Reply exchangeRaw(byte[] wire, boolean head) {
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress(host, port), 5_000);
        socket.setSoTimeout(20_000);
        try {
          OutputStream out = socket.getOutputStream();
          out.write(wire);
          out.flush();
        } catch (IOException e) {
          // The mirror may answer and close before reading all of an oversized request: read on.
        }
        InputStream in = new BufferedInputStream(socket.getInputStream());
        String statusLine;
        Map<String, String> headers;
        int status;
        do {
          statusLine = RawHttp.line(in);
          if (statusLine == null) {
            return Reply.failed("connection closed without an answer");
          }
          String[] parts = statusLine.split(" ", 3);
          if (parts.length < 2 || !parts[0].startsWith("HTTP/") || !parts[1].matches("\\d{3}")) {
            return Reply.failed("not an HTTP status line: " + statusLine);
          }
          status = Integer.parseInt(parts[1]);
          headers = new LinkedHashMap<>();
          for (String h = RawHttp.line(in); h != null && !h.isEmpty(); h = RawHttp.line(in)) {
            int colon = h.indexOf(':');
            if (colon > 0) {
              headers.putIfAbsent(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
            }
          }
        } while (status / 100 == 1); // 100 Continue precedes the real answer
        byte[] body;
        if (head || status == 204 || status == 304) {
          body = new byte[0];
        } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
          body = chunked(in);
        } else if (headers.containsKey("content-length")) {
          int length = Integer.parseInt(headers.get("content-length"));
          body = in.readNBytes(length);
          if (body.length < length) {
            return Reply.failed("body cut at " + body.length + " of " + length + " bytes");
          }
        } else {
          body = in.readAllBytes();
        }
        // The connection closes after the answer: anything before that is a body the answer
        // should not have had (on a HEAD) or bytes beyond its declared length.
        byte[] after = in.readAllBytes();
        if (after.length > 0) {
          return head ? new Reply(status, headers, after, null)
              : Reply.failed(after.length + " bytes after the answer: " + excerpt(after));
        }
        return new Reply(status, headers, body, null);
      } catch (IOException | RuntimeException e) {
        return Reply.failed(e.toString());
      }
    }

    private static byte[] chunked(InputStream in) throws IOException {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      while (true) {
        String size = RawHttp.line(in);
        if (size == null) {
          throw new IOException("chunked body cut short");
        }
        int n = Integer.parseInt(size.split(";")[0].trim(), 16);
        if (n == 0) {
          for (String trailer = RawHttp.line(in); trailer != null && !trailer.isEmpty(); trailer = RawHttp.line(in)) {
            // trailers are not used
          }
          return body.toByteArray();
        }
        byte[] chunk = in.readNBytes(n);
        if (chunk.length < n) {
          throw new IOException("chunk cut short");
        }
        body.writeBytes(chunk);
        RawHttp.line(in);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The generator

  /**
   * Generates hostile requests, deterministically from its random source. {@link #invalid} makes
   * requests that are wrong in one respect each (so that the refusal can be checked) and that must
   * never reach upstream; {@link #validButMissing} makes valid requests that may go upstream.
   */
  private static final class Generator {

    private static final String HEX = "0123456789abcdef";
    private static final String[] SEPARATORS = {".", "_", "__", "-", "--"};

    private final SplittableRandom rnd;

    Generator(SplittableRandom rnd) {
      this.rnd = rnd;
    }

    List<Case> invalid(int count) {
      List<Supplier<Case>> kinds = List.of(this::badName, this::badTag, this::badDigest, this::badMethod,
          this::badRange, this::badPagination, this::badNamespace, this::badQueryEncoding, this::oversized,
          this::malformed);
      return roundRobin(kinds, count);
    }

    List<Case> validButMissing(int count) {
      List<Supplier<Case>> kinds = List.of(this::missingManifest, this::missingBlob, this::missingTagList,
          this::missingReferrers, this::rangeOnContent, this::manifestWithHostileHeaders, this::junkQuery,
          this::manyHeaders, this::absoluteForm);
      return roundRobin(kinds, count);
    }

    private List<Case> roundRobin(List<Supplier<Case>> kinds, int count) {
      List<Case> cases = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        cases.add(kinds.get(i % kinds.size()).get());
      }
      return cases;
    }

    // --- invalid: none of these may reach upstream ---

    private Case badName() {
      String name;
      do {
        name = mutateName(validName());
      } while (isValidName(name));
      // A name with bytes that HTTP itself forbids in a request line never reaches the registry
      // API: it is refused as a request that is not valid HTTP.
      return new Case("bad name", getOrHead(), "/v2/" + name + "/" + endpoint(), someHeaders(), null, null,
          refused("NAME_INVALID", "NAME_UNKNOWN", "UNSUPPORTED"));
    }

    private String mutateName(String name) {
      List<String> parts = new ArrayList<>(List.of(name.split("/")));
      int at = rnd.nextInt(parts.size() + 1);
      switch (rnd.nextInt(10)) {
        case 0 -> {
          // Upper case anywhere, the marker included.
          String p = parts.get(at % parts.size());
          int i = rnd.nextInt(p.length());
          parts.set(at % parts.size(), p.substring(0, i) + p.substring(i).toUpperCase(Locale.ROOT));
          if (rnd.nextBoolean()) {
            parts.add(MARKER.toUpperCase(Locale.ROOT));
          }
        }
        case 1 -> parts.add(at, pick("..", ".", "...", "../..", "../../../../../../etc"));
        case 2 -> parts.add(at, pick("%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "%252e%252e", "..%2f..",
            "%2e%2e%2f%2e%2e"));
        case 3 -> {
          String sep = pick("%2f", "%2F", "%5c", "%5C", "\\", "%252f", "%c0%af");
          String joined = String.join("/", parts);
          int slash = joined.indexOf('/');
          return slash < 0 ? joined + sep + MARKER : joined.substring(0, slash) + sep + joined.substring(slash + 1);
        }
        case 4 -> {
          // Longer than 255 characters, though within the request line's limit.
          StringBuilder b = new StringBuilder(String.join("/", parts));
          int target = 256 + rnd.nextInt(3_000);
          while (b.length() < target) {
            b.append('/').append(word());
          }
          return b.toString();
        }
        case 5 -> {
          String joined = String.join("/", parts);
          return switch (rnd.nextInt(4)) {
            case 0 -> "/" + joined;
            case 1 -> joined + "/";
            case 2 -> joined.replaceFirst("/|$", "//");
            default -> joined + "///" + MARKER;
          };
        }
        case 6 -> {
          String p = parts.get(at % parts.size());
          String bad = pick("-", ".", "_", "___", ".-", "_.", "-.", "..");
          parts.set(at % parts.size(), switch (rnd.nextInt(3)) {
            case 0 -> bad + p;
            case 1 -> p + bad;
            default -> p.charAt(0) + bad + p;
          });
        }
        case 7 -> {
          String p = parts.get(at % parts.size());
          String bad = pick("%20", " ", "\t", "~", ":", "@", ";", "*", "%00", "%0a", "%0d%0a", "%c3%a9",
              "\u00c3\u00a9", "\u00e9", "\u0001", "\u007f", "\u0000", "$", "{", "}", "|", "^", "`", "!",
              "'", "(", ")", "+", ",", "=", "#", "&", "\"", "<", ">", "[", "]", "%ff%fe");
          int i = rnd.nextInt(p.length() + 1);
          parts.set(at % parts.size(), p.substring(0, i) + bad + p.substring(i));
        }
        case 8 -> parts.add(at, pick("ZQXABUSE", "ZqxAbuse", "Zqxabuse.Name", "zqxabuse..x", "zqxabuse-"));
        default -> {
          return pick("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2f..%2f..%2ftmp%2f" + MARKER, "..;/" + MARKER,
              "%2ftmp%2f" + MARKER, "~root/" + MARKER, "." + MARKER, MARKER + "/.", "C:%5c" + MARKER);
        }
      }
      return String.join("/", parts);
    }

    private Case badTag() {
      String tag;
      do {
        tag = switch (rnd.nextInt(14)) {
          case 0 -> "-" + validTag();
          case 1 -> "." + validTag();
          case 2 -> validTag() + "a".repeat(128 + rnd.nextInt(400));
          case 3 -> validTag() + pick("%20x", " x", "\tx");
          case 4 -> pick("%2e%2e", "..", ".", "%2E", "..%2f..%2fetc");
          case 5 -> validTag() + pick("%00", "\u0000", "\u0001", "\u007f", "%0a");
          case 6 -> validTag() + pick(";rm", "@x", "*", "$", "!", "~", "=", "+x", ",", "{x}", "%2f" + MARKER);
          case 7 -> pick("%c3%a9", "\u00c3\u00a9", "\u00e9t\u00e9", "%ff");
          case 8 -> "";
          case 9 -> validTag() + "%2f..%2f.." + MARKER;
          case 10 -> "_" + "x".repeat(128);
          case 11 -> MARKER + pick("#frag", "%23", "%3f", "%25");
          case 12 -> "~" + MARKER;
          default -> pick("-", "--", "-" + MARKER, "." + MARKER);
        };
      } while (TAG.matcher(tag).matches());
      // As for names: a tag with bytes that no request line may carry is refused as invalid HTTP.
      return new Case("bad tag", getOrHead(), "/v2/" + validName() + "/manifests/" + tag, someHeaders(), null,
          null, refused("TAG_INVALID", "DIGEST_INVALID", "NAME_UNKNOWN", "NAME_INVALID", "UNSUPPORTED"));
    }

    private Case badDigest() {
      String endpoint = pick("manifests/", "blobs/", "referrers/");
      String digest;
      do {
        digest = switch (rnd.nextInt(16)) {
          case 0 -> "sha256:" + hex(rnd.nextBoolean() ? 63 : 65);
          case 1 -> "sha256:" + hex(64).toUpperCase(Locale.ROOT);
          case 2 -> "sha256:" + hex(63) + pick("g", "G", "z", "-", "=", "_");
          case 3 -> pick("md5:" + hex(32), "sha1:" + hex(40), "sha384:" + hex(96), "blake3:" + hex(64),
              "sha224:" + hex(56));
          case 4 -> "sha512:" + hex(rnd.nextBoolean() ? 64 : 127);
          case 5 -> pick("SHA256:", "Sha256:", "sha-256:", "sha_256:") + hex(64);
          case 6 -> "sha256+b64:" + "dGhpcyBpcyBub3QgYSBkaWdlc3Q" + MARKER;
          case 7 -> pick("sha256::", ":", "sha256", "sha256:", "::") + hex(64);
          case 8 -> "sha256:" + hex(64) + "a".repeat(200 + rnd.nextInt(200));
          case 9 -> "sha256:%2e%2e%2f" + hex(55);
          case 10 -> "sha256%3a" + hex(64);
          case 11 -> "sha256:" + hex(64) + pick("%00", "\u0000", "%0a", "%20", "\u0001");
          case 12 -> pick("latest", MARKER, "sha256", "", "-");
          case 13 -> "sha256:" + pick("../../../../etc/passwd", "..%2f..%2f" + MARKER, "%2e%2e");
          case 14 -> "sha256:" + hex(62) + pick("\u00e9", "%c3%a9", "\u00c3\u00a9");
          default -> "sha256:" + hex(64) + ":" + hex(64);
        };
        // A manifest reference without a colon is a tag: it must not be a valid one either.
      } while (DIGEST.matcher(digest).matches() || endpoint.equals("manifests/") && TAG.matcher(digest).matches());
      return new Case("bad digest", endpoint.equals("referrers/") ? "GET" : getOrHead(),
          "/v2/" + validName() + "/" + endpoint + digest, someHeaders(), null, null,
          refused("DIGEST_INVALID", "TAG_INVALID", "NAME_UNKNOWN", "NAME_INVALID"));
    }

    private Case badMethod() {
      String method = pick("PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
          "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PURGE", "LINK", "SEARCH", "FOO", "get", "Get", "head",
          "GETS", "M-SEARCH", MARKER.toUpperCase(Locale.ROOT));
      String target = method.equals("CONNECT") && rnd.nextBoolean() ? pick("127.0.0.1:22", "mirror.test:443")
          : method.equals("OPTIONS") && rnd.nextBoolean() ? "*"
          : pick("/v2/", "/v2/" + image.repo() + "/manifests/" + image.tag(),
              "/v2/" + image.repo() + "/manifests/" + image.manifestDigest(),
              "/v2/" + image.repo() + "/blobs/" + image.layerDigests().get(0),
              "/v2/" + image.repo() + "/blobs/uploads/", "/v2/" + image.repo() + "/blobs/uploads/" + MARKER,
              "/v2/" + image.repo() + "/tags/list", "/v2/" + validName() + "/manifests/" + validTag(),
              "/healthz", "/readyz", "/metrics", "/nowhere/" + MARKER);
      List<String[]> headers = new ArrayList<>(someHeaders());
      byte[] body = null;
      switch (rnd.nextInt(3)) {
        case 0 -> {
          body = ("{\"" + MARKER + "\":" + rnd.nextInt() + "}").getBytes(ISO_8859_1);
          headers.add(new String[] {"Content-Type", "application/json"});
          headers.add(new String[] {"Content-Length", Integer.toString(body.length)});
        }
        case 1 -> {
          body = ("5\r\n" + MARKER.substring(0, 5) + "\r\n0\r\n\r\n").getBytes(ISO_8859_1);
          headers.add(new String[] {"Transfer-Encoding", "chunked"});
        }
        default -> {
          // no body
        }
      }
      return new Case("method not allowed", method, target, headers, body, null,
          refused("UNSUPPORTED", "NAME_UNKNOWN"));
    }

    private Case badRange() {
      String range = switch (rnd.nextInt(12)) {
        case 0 -> "bytes=" + pick("abc", "x-", "-x", "a-b", MARKER);
        case 1 -> {
          int a = 1 + rnd.nextInt(1_000_000);
          yield "bytes=" + a + "-" + rnd.nextInt(a);
        }
        case 2 -> "bytes=" + pick("--1", "1-2-3", "-", "", " ", ",", "0-1,,2-3", "-0", "0--1");
        case 3 -> "bytes=" + "9".repeat(19 + rnd.nextInt(40)) + "-";
        case 4 -> "bytes=0-" + "9".repeat(19 + rnd.nextInt(40));
        case 5 -> "bytes=0-1," + pick("abc", "5-1", "-", "x-y");
        case 6 -> "bytes=" + pick("1.5-2", "+1-2", "0x10-0x20", "1e3-2e3", "\u0661-\u0662", "1 2-3");
        case 7 -> pick("Bytes=", "BYTES=", "bYtEs=") + pick("abc", "9-1", "--");
        case 8 -> {
          // Many valid ranges with one bad one at the end: the whole header is malformed.
          StringBuilder b = new StringBuilder("bytes=");
          int n = 10 + rnd.nextInt(500);
          for (int i = 0; i < n; i++) {
            b.append(i).append('-').append(i + rnd.nextInt(3)).append(',');
          }
          yield b.append("oops").toString();
        }
        case 9 -> "bytes=-" + "1".repeat(20);
        case 10 -> "bytes=" + (rnd.nextInt(100) + 50) + "-" + rnd.nextInt(50);
        default -> "bytes=0-1, 5-1";
      };
      String digest = rnd.nextBoolean() ? pick(image.layerDigests().toArray(String[]::new)) : missingDigest();
      String name = rnd.nextBoolean() ? image.repo() : validName();
      List<String[]> headers = new ArrayList<>(someHeaders());
      headers.add(new String[] {"Range", range});
      return new Case("malformed range", getOrHead(), "/v2/" + name + "/blobs/" + digest, headers, null, null,
          refused("RANGE_INVALID"));
    }

    private Case badPagination() {
      String n = pick("-1", "abc", "1e9", "99999999999", "1234567890", "0x10", "%20", "1%00", "%2b5", "5.0", "",
          "%2d1", "%d9%a3", "1,2", "9".repeat(500), "-0", "1%20", "%201", MARKER, "%ef%bc%91");
      String last = pick("", "-x", ".x", "%2e%2e", "..", "a%2fb", "x".repeat(129), "a%20b", "%00", "-" + MARKER);
      String query = switch (rnd.nextInt(3)) {
        case 0 -> "n=" + n;
        case 1 -> "last=" + last;
        default -> "n=" + n + "&last=" + last;
      };
      String name = rnd.nextBoolean() ? image.repo() : validName();
      return new Case("bad pagination", "GET", "/v2/" + name + "/tags/list?" + query, someHeaders(), null, null,
          refused("PAGINATION_NUMBER_INVALID", "TAG_INVALID"));
    }

    private Case badNamespace() {
      String ns = pick("evil.example", "%2e%2e%2f%2e%2e", "..", "LOCAL", "Local", "local%00", "local.evil", "",
          "127.0.0.1:22", "localhost", "docker.io", MARKER, "local/..", "local%2f..", "local%20", "%20local",
          "http://evil.example");
      String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint() + "?ns=" + ns;
      return new Case("unknown namespace", getOrHead(), target, someHeaders(), null, null, refused("NAME_UNKNOWN"));
    }

    private Case badQueryEncoding() {
      String bad = pick("%ZZ", "%", "%G1", "%2", "%zz" + MARKER, "%%", "%u0041", "%e9%");
      String endpoint = endpoint();
      String param = endpoint.equals("tags/list") ? pick("n", "last", "ns") : "ns";
      String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint + "?" + param
          + "=" + bad;
      return new Case("undecodable query", getOrHead(), target, someHeaders(), null, null, refused());
    }

    private Case oversized() {
      String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint();
      List<String[]> headers = new ArrayList<>();
      switch (rnd.nextInt(5)) {
        case 0 -> headers.add(new String[] {"X-" + MARKER, "a".repeat(8_300 + rnd.nextInt(8_000))});
        case 1 -> {
          // Beyond the 8 KiB the server allows for all headers together.
          int n = 600 + rnd.nextInt(300);
          for (int i = 0; i < n; i++) {
            headers.add(new String[] {"X-" + MARKER + "-" + i, word()});
          }
        }
        case 2 -> {
          int n = 600 + rnd.nextInt(300);
          for (int i = 0; i < n; i++) {
            headers.add(new String[] {"Range", "bytes=" + i + "-" + (i + 1)});
          }
        }
        case 3 -> headers.add(new String[] {"Cookie", (MARKER + "=1; ").repeat(800 + rnd.nextInt(300))});
        default -> target = "/v2/" + validName() + "/tags/list?last=" + "a".repeat(4_100 + rnd.nextInt(4_000));
      }
      return new Case("oversized request", getOrHead(), target, headers, null, null, refused());
    }

    /** Requests whose HTTP itself is broken; all name invalid repositories, so none may go upstream. */
    private Case malformed() {
      String bad = "/v2/" + MARKER.toUpperCase(Locale.ROOT) + "/manifests/" + validTag();
      String c = "Host: mirror.test\r\nConnection: close\r\n";
      String method = "GET";
      String wire;
      Expectation expect = refused();
      switch (rnd.nextInt(14)) {
        case 0 -> wire = "GET /v2/a" + pick("\u0000", "\u0001", "\u007f", "\r", " ", "\t")
            + "b/manifests/x HTTP/1.1\r\n" + c + "\r\n";
        case 1 -> wire = "GET " + bad + " HTTP/1.1\r\nHost: mirror.test\nConnection: close\n\n";
        case 2 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + pick("Range : bytes=0-1", "R\u0001nge: x",
            "X-A: \u0001\u007f", "No colon here", ": empty-name", "X-A:\u0000") + "\r\n\r\n";
        case 3 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "X-Folded: a\r\n " + MARKER + "\r\n\r\n";
        case 4 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + pick("Content-Length: -1", "Content-Length: abc",
            "Content-Length: 1\r\nContent-Length: 2", "Content-Length: 99999999999999999999") + "\r\n\r\n";
        case 5 -> {
          wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Transfer-Encoding: chunked\r\n\r\n"
              + pick("zz", "-1", "ffffffffffffffffff", "5\r\nabcdefgh") + "\r\n\r\n";
          expect = refusedOrDropped();
        }
        case 6 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "0\r\n\r\n";
        case 7 -> wire = "GET http://evil.example" + bad + " HTTP/1.1\r\n" + c + "\r\n";
        case 8 -> wire = "GET " + pick("*", "v2/x", "evil.example:80", "//evil.example/v2/X/manifests/a")
            + " HTTP/1.1\r\n" + c + "\r\n";
        case 9 -> wire = "\r\n\r\nGET " + bad + " HTTP/1.1\r\n" + c + "\r\n";
        case 10 -> wire = "GET " + bad + "\r\n" + c + "\r\n";
        case 11 -> {
          String garbage = pick("\u0000\u0001\u0002", "\u0016\u0003\u0001\u0000", "GARBAGE", "\u00ff\u00fe");
          wire = garbage + MARKER + "\r\n\r\n";
          if (garbage.charAt(0) == 0x16) {
            // The start of a TLS handshake: a client speaking https to the plain port.
            expect = dropped();
          }
        }
        case 12 -> {
          method = "HEAD";
          wire = "HEAD " + bad + " HTTP/1.0\r\n\r\n";
        }
        default -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
      }
      return new Case("malformed HTTP", method, bad, List.of(), null, wire.getBytes(ISO_8859_1), expect);
    }

    // --- valid but missing, or valid with hostile headers: these may go upstream ---

    private Case missingManifest() {
      String ref = rnd.nextBoolean() ? validTag() : missingDigest();
      return new Case("missing manifest", getOrHead(), "/v2/" + validName() + "/manifests/" + ref, someHeaders(),
          null, null, unknown("MANIFEST_UNKNOWN", "NAME_UNKNOWN"));
    }

    private Case missingBlob() {
      List<String[]> headers = new ArrayList<>(someHeaders());
      if (rnd.nextInt(3) == 0) {
        headers.add(new String[] {"Range", "bytes=" + rnd.nextInt(100) + "-" + (100 + rnd.nextInt(100))});
      }
      String name = rnd.nextInt(4) == 0 ? image.repo() : validName();
      return new Case("missing blob", getOrHead(), "/v2/" + name + "/blobs/" + missingDigest(), headers, null, null,
          unknown("BLOB_UNKNOWN", "NAME_UNKNOWN"));
    }

    private Case missingTagList() {
      boolean existing = rnd.nextInt(3) == 0;
      String query = switch (rnd.nextInt(4)) {
        case 0 -> "";
        case 1 -> "?n=" + pick("0", "1", "10000", "10001", "999999999", "000000001", "65536");
        case 2 -> "?last=" + validTag();
        default -> "?n=" + rnd.nextInt(1_000_000_000) + "&last=" + validTag();
      };
      String target = "/v2/" + (existing ? image.repo() : validName()) + "/tags/list" + query;
      return new Case("tag list", "GET", target, someHeaders(), null, null,
          existing ? anyAnswer() : unknown("NAME_UNKNOWN"));
    }

    private Case missingReferrers() {
      String query = rnd.nextBoolean() ? "" : "?artifactType=" + pick("application%2Fvnd.example%2Bjson",
          "application/vnd." + MARKER, "not%20a%20type", "%2e%2e%2f%2e%2e");
      return new Case("referrers", "GET", "/v2/" + validName() + "/referrers/" + missingDigest() + query,
          someHeaders(), null, null, (c, r) -> r.status() == 404 || r.status() == 200 ? null : "status " + r.status());
    }

    private Case rangeOnContent() {
      String digest = pick(image.blobs().keySet().toArray(String[]::new));
      byte[] bytes = image.blobs().get(digest);
      int size = bytes.length;
      List<String[]> headers = new ArrayList<>(someHeaders());
      switch (rnd.nextInt(10)) {
        case 0 -> {
          int a = rnd.nextInt(size);
          headers.add(new String[] {"Range", "bytes=" + a + "-" + (a + rnd.nextInt(size))});
        }
        case 1 -> headers.add(new String[] {"Range", "bytes=-" + (1 + rnd.nextInt(2 * size))});
        case 2 -> headers.add(new String[] {"Range", "bytes=" + rnd.nextInt(size) + "-"});
        case 3 -> {
          int a = rnd.nextInt(size / 2);
          headers.add(new String[] {"Range", "bytes=" + a + "-" + (a + 100) + "," + (a + 50) + "-" + (a + 150)});
        }
        case 4 -> {
          StringBuilder b = new StringBuilder("bytes=");
          int n = 2 + rnd.nextInt(400);
          for (int i = 0; i < n; i++) {
            int from = rnd.nextInt(size);
            b.append(i == 0 ? "" : ",").append(from).append('-').append(from + rnd.nextInt(10));
          }
          headers.add(new String[] {"Range", b.toString()});
        }
        case 5 -> headers.add(new String[] {"Range", "bytes=" + (size + rnd.nextInt(1_000_000)) + "-"});
        case 6 -> headers.add(new String[] {"Range", pick("items=0-5", "bytes 0-5", "pages=1", "bytes=0-5;x")});
        case 7 -> {
          headers.add(new String[] {"Range", "bytes=0-9"});
          headers.add(new String[] {"Range", pick("bytes=5-1", "bytes=abc", "bytes=10-19")});
        }
        case 8 -> headers.add(new String[] {"Range", "bytes=0-0"});
        default -> headers.add(new String[] {"If-None-Match", pick("*", "\"" + digest + "\"", "W/\"x\"",
            "\"" + MARKER + "\", \"" + digest + "\"")});
      }
      return new Case("range on content", getOrHead(), "/v2/" + image.repo() + "/blobs/" + digest, headers, null,
          null, content(bytes));
    }

    private Case manifestWithHostileHeaders() {
      List<String[]> headers = new ArrayList<>(someHeaders());
      switch (rnd.nextInt(6)) {
        case 0 -> {
          StringBuilder accept = new StringBuilder();
          int n = 50 + rnd.nextInt(100);
          for (int i = 0; i < n; i++) {
            accept.append(i == 0 ? "" : ", ").append("application/vnd.example.").append(word()).append("+json");
          }
          headers.add(new String[] {"Accept", accept + ", " + image.mediaType()});
        }
        case 1 -> headers.add(new String[] {"Accept", pick("*/*;q=abc", "text/html", "*/*;q=0", ";;;,,,",
            "application/json;q=0.5, */*;q=0", "application/vnd.docker.distribution.manifest.v1+json")});
        case 2 -> {
          for (int i = 0; i < 40; i++) {
            headers.add(new String[] {"Accept", pick(ImageSeeder.DOCKER_MANIFEST, ImageSeeder.OCI_MANIFEST,
                ImageSeeder.OCI_INDEX, "*/*")});
          }
        }
        case 3 -> headers.add(new String[] {"If-None-Match", pick("*", "\"" + image.manifestDigest() + "\"",
            "\"" + MARKER + "\"")});
        case 4 -> headers.add(new String[] {"Authorization", pick("Bearer ../../" + MARKER, "Basic %%%",
            "Bearer " + "x".repeat(5_000))});
        default -> headers.add(new String[] {"Range", "bytes=0-10"});
      }
      String ref = rnd.nextBoolean() ? image.tag() : image.manifestDigest();
      Expectation manifest = content(image.manifest());
      return new Case("manifest with hostile headers", getOrHead(), "/v2/" + image.repo() + "/manifests/" + ref,
          headers, null, null, (c, r) -> r.status() == 200 || r.status() >= 400 || r.status() == 304
              ? manifest.violation(c, r) : "status " + r.status());
    }

    private Case junkQuery() {
      String query = pick("foo=%ZZ", "x=1&x=2", "=", "&&&", "ns=local", "n=5", "a=" + "b".repeat(3_000),
          MARKER + "=%", "last=" + MARKER, "%=%", "?" + MARKER, "ns=local&ns=" + MARKER);
      String target = "/v2/" + validName() + "/" + pick("manifests/" + validTag(), "blobs/" + missingDigest());
      // Unknown parameters may be ignored or refused, so long as it is done cleanly.
      Expectation missing = unknown("MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN");
      return new Case("junk query", getOrHead(), target + "?" + query, someHeaders(), null, null,
          (c, r) -> r.status() == 400 ? null : missing.violation(c, r));
    }

    private Case manyHeaders() {
      List<String[]> headers = new ArrayList<>();
      switch (rnd.nextInt(5)) {
        case 0 -> {
          for (int i = 0; i < 100; i++) {
            headers.add(new String[] {"X-" + MARKER + "-" + i, word()});
          }
        }
        case 1 -> headers.add(new String[] {"User-Agent", MARKER + "/" + "x".repeat(6_000)});
        case 2 -> {
          for (int i = 0; i < 30; i++) {
            headers.add(new String[] {"X-" + MARKER, "dup-" + i});
          }
        }
        case 3 -> headers.add(new String[] {"Host", "evil.example"});
        default -> headers.add(new String[] {"Cookie", MARKER + "=" + "../".repeat(500)});
      }
      String target = "/v2/" + validName() + "/" + pick("manifests/" + validTag(), "blobs/" + missingDigest());
      return new Case("many or large headers", getOrHead(), target, headers, null, null,
          unknown("MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN"));
    }

    private Case absoluteForm() {
      String path = "/v2/" + validName() + "/manifests/" + validTag();
      String wire = "GET " + pick("http://evil.example", "http://127.0.0.1:1", "https://" + MARKER + ".example")
          + path + " HTTP/1.1\r\nHost: mirror.test\r\nConnection: close\r\n\r\n";
      return new Case("absolute-form target", "GET", path, List.of(), null, wire.getBytes(ISO_8859_1),
          unknown("MANIFEST_UNKNOWN", "NAME_UNKNOWN"));
    }

    // --- building blocks ---

    /** A valid repository name, often carrying the marker. */
    private String validName() {
      String name;
      do {
        int components = 1 + rnd.nextInt(3);
        StringBuilder b = new StringBuilder();
        int markerAt = rnd.nextBoolean() ? rnd.nextInt(components) : -1;
        for (int i = 0; i < components; i++) {
          b.append(i == 0 ? "" : "/").append(i == markerAt ? MARKER + rnd.nextInt(1000) : word());
          if (rnd.nextInt(4) == 0) {
            b.append(pick(SEPARATORS)).append(word());
          }
        }
        name = b.toString();
      } while (!isValidName(name) || name.startsWith("local/"));
      return name;
    }

    private String word() {
      StringBuilder b = new StringBuilder();
      int n = 1 + rnd.nextInt(10);
      for (int i = 0; i < n; i++) {
        b.append("abcdefghijklmnopqrstuvwxyz0123456789".charAt(rnd.nextInt(36)));
      }
      return b.toString();
    }

    private String validTag() {
      String tag = pick("v", "latest-", "_", "1.", "X") + word() + (rnd.nextBoolean() ? "." + word() : "");
      return rnd.nextBoolean() ? tag : MARKER + "-" + tag;
    }

    private String missingDigest() {
      return rnd.nextInt(5) == 0 ? "sha512:" + hex(128) : "sha256:" + hex(64);
    }

    private String hex(int n) {
      StringBuilder b = new StringBuilder(n);
      for (int i = 0; i < n; i++) {
        b.append(HEX.charAt(rnd.nextInt(16)));
      }
      return b.toString();
    }

    /** A valid endpoint and reference after a name. */
    private String endpoint() {
      return switch (rnd.nextInt(4)) {
        case 0 -> "manifests/" + (rnd.nextBoolean() ? validTag() : missingDigest());
        case 1 -> "blobs/" + missingDigest();
        case 2 -> "tags/list";
        default -> "referrers/" + missingDigest();
      };
    }

    private String getOrHead() {
      return rnd.nextBoolean() ? "GET" : "HEAD";
    }

    /** Headers a hostile client might add to anything; harmless ones, mostly. */
    private List<String[]> someHeaders() {
      return switch (rnd.nextInt(6)) {
        case 0 -> List.<String[]>of(new String[] {"X-" + MARKER, "../../../../tmp/" + MARKER});
        case 1 -> List.<String[]>of(new String[] {"Accept", "*/*"}, new String[] {"Accept", "*/*"});
        case 2 -> List.<String[]>of(new String[] {"User-Agent", MARKER + "/1.0 (%2e%2e)"});
        default -> List.of();
      };
    }

    @SafeVarargs
    private <T> T pick(T... options) {
      return options[rnd.nextInt(options.length)];
    }
  }
}
