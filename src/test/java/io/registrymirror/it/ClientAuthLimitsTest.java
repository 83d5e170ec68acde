package io.registrymirror.it;

import static io.registrymirror.testing.MirrorUnderTest.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.RawHttp;
import io.registrymirror.testing.RawHttp.Answer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * Client authentication under attack: a flood of wrong passwords does not stall a real user,
 * the answer's timing does not tell which users exist, and the htpasswd file can be replaced in
 * place, as Kubernetes replaces a Secret's files, without a restart.
 */
@Timeout(180)
class ClientAuthLimitsTest extends MirrorTestBase {

  /** The cost htpasswd -B uses: checks as slow as in production. */
  private static final int COST = 10;
  private static final String USER = "ci-runner";
  private static final String PASSWORD = "pw-client-Hq7";
  private static final String OTHER = "other";
  private static final String OTHER_PASSWORD = "something-else";

  @TempDir
  static Path files;
  private static String userLine;
  private static String otherLine;

  private MirrorUnderTest secured;

  @BeforeAll
  static void hashes() {
    userLine = USER + ":" + BCrypt.hashpw(PASSWORD, BCrypt.gensalt(COST)) + "\n";
    otherLine = OTHER + ":" + BCrypt.hashpw(OTHER_PASSWORD, BCrypt.gensalt(COST)) + "\n";
  }

  @AfterEach
  void stopSecured() {
    if (secured != null) {
      secured.close();
    }
  }

  @Test
  void aFloodOfWrongPasswordsDoesNotStallARealUser(Vertx vertx) throws Exception {
    start(vertx, write(files.resolve("flood"), userLine + otherLine), "");
    RawHttp attacker = new RawHttp(secured.hostPort(), "127.0.0.2");
    RawHttp user = new RawHttp(secured.hostPort(), "127.0.0.1");

    // For scale: one check, warm, from yet another address.
    RawHttp scale = new RawHttp(secured.hostPort(), "127.0.0.4");
    long oneCheck = median(new long[] {timedRefusal(scale, basic(OTHER, "a")), timedRefusal(scale, basic(OTHER, "b")),
        timedRefusal(scale, basic(OTHER, "c"))});

    int flood = 100;
    ExecutorService pool = Executors.newFixedThreadPool(flood);
    CountDownLatch sent = new CountDownLatch(flood);
    List<Future<Answer>> answers = new ArrayList<>();
    try {
      for (int i = 0; i < flood; i++) {
        String header = basic(USER, "wrong-" + i);
        answers.add(pool.submit(() -> {
          try (Socket s = attacker.open()) {
            s.getOutputStream().write(("GET /v2/ HTTP/1.1\r\nHost: m\r\n" + header + "Connection: close\r\n\r\n")
                .getBytes(StandardCharsets.ISO_8859_1));
            sent.countDown();
            return RawHttp.read(s, false);
          }
        }));
      }
      sent.await();
      long started = System.nanoTime();
      Answer login = user.get("/v2/", basic(USER, PASSWORD));
      long underFlood = millisSince(started);

      Map<Integer, Integer> statuses = new TreeMap<>();
      int withRetryAfter = 0;
      for (Future<Answer> f : answers) {
        Answer a = f.get();
        statuses.merge(a.status(), 1, Integer::sum);
        assertThat(a.header("Docker-Distribution-API-Version")).isEqualTo("registry/2.0");
        if (a.status() == 429) {
          assertThat(code(a)).isEqualTo("TOOMANYREQUESTS");
          withRetryAfter += a.header("Retry-After") != null ? 1 : 0;
        } else {
          assertThat(a.status()).isEqualTo(401);
        }
      }
      System.out.printf("client auth: one check %d ms; a real user's login during %d concurrent wrong passwords"
          + " %d ms; the flood's answers %s%n", oneCheck, flood, underFlood, statuses);
      assertThat(login.status()).isEqualTo(200);
      assertThat(statuses.getOrDefault(429, 0)).as("wrong passwords told to wait").isGreaterThanOrEqualTo(80);
      assertThat(withRetryAfter).isEqualTo(statuses.getOrDefault(429, 0));
      // Queued behind the whole flood, it would wait about a hundred checks.
      assertThat(underFlood).as("ms for the real user's login, one check taking %d ms", oneCheck)
          .isLessThan(20 * Math.max(oneCheck, 20));
    } finally {
      pool.shutdownNow();
    }
    // The limit is per address: another client still logs in.
    assertThat(user.get("/v2/", basic(USER, PASSWORD)).status()).isEqualTo(200);
    assertThat(new RawHttp(secured.hostPort(), "127.0.0.3").get("/v2/", basic(OTHER, "wrong")).status())
        .isEqualTo(401);
  }

  @Test
  void anUnknownUserTakesAsLongAsAWrongPassword(Vertx vertx) throws Exception {
    start(vertx, write(files.resolve("timing"), userLine + otherLine), "limits:\n  loginFailures: 1000\n");
    RawHttp client = new RawHttp(secured.hostPort(), null);
    int rounds = 9;
    long[] known = new long[rounds];
    long[] unknown = new long[rounds];
    for (int i = 0; i < rounds; i++) {
      known[i] = timedRefusal(client, basic(USER, "wrong-" + i));
      unknown[i] = timedRefusal(client, basic("nobody-" + i, PASSWORD));
    }
    long knownMedian = median(known);
    long unknownMedian = median(unknown);
    System.out.printf("client auth: median refusal of a wrong password %d ms, of an unknown user %d ms%n",
        knownMedian, unknownMedian);
    assertThat(unknownMedian).as("ms for an unknown user, against %d ms for a known one", knownMedian)
        .isGreaterThanOrEqualTo(knownMedian / 2);
  }

  @Test
  void theHtpasswdFileIsReplacedInPlaceLikeAKubernetesSecret(Vertx vertx) throws Exception {
    // Kubernetes mounts a Secret as a directory whose files link through ..data, a symlink it
    // swaps atomically to a new directory of files.
    Path secret = Files.createDirectories(files.resolve("secret"));
    write(secret.resolve("..v1").resolve("htpasswd"), userLine);
    Files.createSymbolicLink(secret.resolve("..data"), Path.of("..v1"));
    Files.createSymbolicLink(secret.resolve("htpasswd"), Path.of("..data/htpasswd"));
    try (LogCapture log = LogCapture.start()) {
      start(vertx, secret.resolve("htpasswd"), "limits:\n  loginFailures: 1000\n");
      RawHttp client = new RawHttp(secured.hostPort(), null);
      assertThat(client.get("/v2/", basic(USER, PASSWORD)).status()).isEqualTo(200);

      String newUser = "rotated";
      String newPassword = "pw-rotated-9Zt";
      String spare = "spare";
      write(secret.resolve("..v2").resolve("htpasswd"), newUser + ":" + BCrypt.hashpw(newPassword, BCrypt.gensalt(4))
          + "\n" + spare + ":" + BCrypt.hashpw(newPassword, BCrypt.gensalt(4)) + "\n");
      swap(secret, "..v2");
      eventually(Duration.ofSeconds(20), () -> status(client, basic(newUser, newPassword)) == 200,
          "the new user to be accepted");
      // The removed user's remembered success no longer counts.
      assertThat(client.get("/v2/", basic(USER, PASSWORD)).status()).isEqualTo(401);

      write(secret.resolve("..v3").resolve("htpasswd"), "this is not an htpasswd line\n");
      swap(secret, "..v3");
      eventually(Duration.ofSeconds(20), () -> log.lines().stream().anyMatch(l ->
          l.contains("auth.htpasswd.rejected") && l.contains("line 1")), "the broken file to be rejected");
      // The users before it stay, not only those remembered.
      assertThat(client.get("/v2/", basic(spare, newPassword)).status()).isEqualTo(200);
      assertThat(log.lines()).noneMatch(l -> l.contains(newPassword) || l.contains(PASSWORD));
    }
  }

  private void start(Vertx vertx, Path htpasswd, String more) {
    secured = MirrorUnderTest.start(vertx, "local", upstream.url(), files.resolve("cache-" + System.nanoTime()), "",
        "auth:\n  htpasswd: " + htpasswd + "\n" + more);
  }

  private static Path write(Path file, String text) throws IOException {
    Files.createDirectories(file.getParent());
    return Files.writeString(file, text);
  }

  private static void swap(Path secret, String target) throws IOException {
    Path next = secret.resolve("..data_tmp");
    Files.createSymbolicLink(next, Path.of(target));
    Files.move(next, secret.resolve("..data"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  private static int status(RawHttp client, String header) {
    try {
      return client.get("/v2/", header).status();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static long timedRefusal(RawHttp client, String header) throws IOException {
    long started = System.nanoTime();
    Answer a = client.get("/v2/", header);
    long ms = millisSince(started);
    assertThat(a.status()).isEqualTo(401);
    return ms;
  }

  private static long median(long[] values) {
    long[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  private static long millisSince(long started) {
    return (System.nanoTime() - started) / 1_000_000;
  }

  private static String code(Answer a) {
    return new JsonObject(a.text()).getJsonArray("errors").getJsonObject(0).getString("code");
  }

  private static String basic(String user, String password) {
    return "Authorization: Basic " + Base64.getEncoder().encodeToString((user + ":" + password)
        .getBytes(StandardCharsets.UTF_8)) + "\r\n";
  }
}
