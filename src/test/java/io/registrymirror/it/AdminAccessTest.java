package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.AdminApi;
import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.MirrorUnderTest;
import io.registrymirror.testing.Required;
import io.registrymirror.testing.TestLimits;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who may use the admin endpoints: with {@code admin.token} set, only requests bearing it (from
 * anywhere); without one, only clients on the mirror's own host. Pulls and the read-only tag
 * listing are not affected either way.
 */
@Timeout(120)
class AdminAccessTest extends MirrorTestBase {

  private static final String TOKEN = "admin-token-0123456789abcdef";
  private static final String CHALLENGE = "Bearer realm=\"registry-mirror-admin\"";

  @Test
  void withATokenOnlyRequestsBearingItAreLetIn(Vertx vertx, @TempDir Path cache) throws Exception {
    new ImageSeeder(registry.url(), 7).pushImage("admin/app", "1.0", 1, 10_000, "docker");
    MirrorUnderTest m = MirrorUnderTest.start(vertx, "local", upstream.url(), cache, "",
        "admin:\n  token: " + TOKEN + "\n");
    try {
      for (AdminApi refused : new AdminApi[] {new AdminApi(m.url(), null), new AdminApi(m.url(), TOKEN + "x"),
          new AdminApi(m.url(), TOKEN.substring(1)), new AdminApi(m.url(), "")}) {
        assertUnauthorized(refused.prefetch("admin/app:1.0"));
        assertUnauthorized(refused.get("/api/v1/prefetch/0123456789abcdef01234567"));
        // The cache administration endpoints sit behind the same guard.
        assertUnauthorized(refused.get("/api/v1/cache"));
      }
      assertUnauthorized(new AdminApi(m.url(), null).post("/api/v1/prefetch", "{\"image\": \"admin/app:1.0\"}",
          "Authorization", "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + TOKEN).getBytes())));
      assertThat(upstream.seen()).isEmpty();

      AdminApi admin = new AdminApi(m.url(), TOKEN);
      HttpResponse<String> accepted = admin.prefetch("admin/app:1.0");
      assertThat(accepted.statusCode()).isEqualTo(202);
      String location = accepted.headers().firstValue("Location").orElseThrow();
      assertThat(admin.awaitEnd(location, Duration.ofSeconds(60)).getString("state")).isEqualTo("done");
      assertUnauthorized(new AdminApi(m.url(), null).get(location));

      // Not an admin endpoint: pulls and the tag listing need no token.
      assertThat(m.get("/v2/").statusCode()).isEqualTo(200);
      assertThat(m.get("/api/v1/tags").statusCode()).isEqualTo(200);
    } finally {
      m.close();
    }
  }

  @Test
  void withoutATokenOnlyLoopbackClientsAreLetIn(Vertx vertx, @TempDir Path cache) throws Exception {
    InetAddress external = externalAddress();
    Required.that(external != null, "this host has no non-loopback IPv4 address");
    MirrorUnderTest m = MirrorUnderTest.startWithConfig(vertx, listeningEverywhere(cache, ""), cache);
    try {
      String remote = "http://" + external.getHostAddress() + ":" + m.url().substring(m.url().lastIndexOf(':') + 1);
      AdminApi fromElsewhere = new AdminApi(remote, null);
      for (HttpResponse<String> r : java.util.List.of(fromElsewhere.prefetch("admin/app:1.0"),
          fromElsewhere.get("/api/v1/prefetch/0123456789abcdef01234567"), fromElsewhere.get("/api/v1/cache"))) {
        assertThat(r.statusCode()).isEqualTo(403);
        JsonObject error = new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0);
        assertThat(error.getString("code")).isEqualTo("DENIED");
        assertThat(error.getString("detail")).contains("admin.token");
      }
      // The same client may pull.
      assertThat(new AdminApi(remote, null).get("/v2/").statusCode()).isEqualTo(200);
      assertThat(new AdminApi(remote, null).get("/api/v1/tags").statusCode()).isEqualTo(200);
      // From this host it is let in.
      HttpResponse<String> local = new AdminApi(m.url(), null).prefetch("admin/none:1.0");
      assertThat(local.statusCode()).isEqualTo(202);
    } finally {
      m.close();
    }
    // With a token, the address no longer matters.
    MirrorUnderTest withToken = MirrorUnderTest.startWithConfig(vertx,
        listeningEverywhere(cache, "admin:\n  token: " + TOKEN + "\n"), cache);
    try {
      String remote = "http://" + external.getHostAddress() + ":"
          + withToken.url().substring(withToken.url().lastIndexOf(':') + 1);
      assertThat(new AdminApi(remote, TOKEN).prefetch("admin/none:1.0").statusCode()).isEqualTo(202);
    } finally {
      withToken.close();
    }
  }

  private String listeningEverywhere(Path cache, String extra) {
    return extra + """
        listen: 0.0.0.0:0
        cache:
          dir: %s
        upstreams:
          local:
            url: %s
        %s
        """.formatted(cache, upstream.url(), TestLimits.upstreamTimeoutsYaml().indent(4));
  }

  private static void assertUnauthorized(HttpResponse<String> r) {
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.headers().firstValue("WWW-Authenticate")).hasValue(CHALLENGE);
    assertThat(new JsonObject(r.body()).getJsonArray("errors").getJsonObject(0).getString("code"))
        .isEqualTo("UNAUTHORIZED");
  }

  /** An IPv4 address of this host that is not loopback: a client that is not on the mirror's host. */
  private static InetAddress externalAddress() throws Exception {
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      if (nic.isUp() && !nic.isLoopback()) {
        for (InetAddress a : Collections.list(nic.getInetAddresses())) {
          if (a instanceof Inet4Address && !a.isLoopbackAddress()) {
            return a;
          }
        }
      }
    }
    return null;
  }
}
