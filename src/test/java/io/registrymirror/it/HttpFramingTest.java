package io.registrymirror.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.registrymirror.testing.LogCapture;
import io.registrymirror.testing.RawHttp;
import io.registrymirror.testing.RawHttp.Answer;
import io.vertx.core.json.JsonObject;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Requests whose HTTP framing is missing, ambiguous or not spoken by the mirror: each gets the
 * OCI error JSON with the API version header (none of it on a HEAD), and the connection is closed
 * where what follows could be read differently by a proxy in front.
 */
@Timeout(60)
class HttpFramingTest extends MirrorTestBase {

  private RawHttp raw;

  @BeforeEach
  void client() {
    raw = new RawHttp(mirror.hostPort(), null);
  }

  @Test
  void http11WithoutHostIsABadRequestAndNoStackTrace() throws Exception {
    try (LogCapture log = LogCapture.start()) {
      for (String path : List.of("/v2/", "/v2/a/manifests/b", "/healthz", "/nowhere")) {
        Answer a = raw.exchange("GET " + path + " HTTP/1.1\r\nConnection: close\r\n\r\n", false);
        assertRefusal(a, 400);
      }
      assertThat(log.lines()).noneMatch(line -> line.contains("level=error") || line.contains("Exception"));
    }
  }

  @Test
  void aHeadWithAnOverlongUriGetsItsStatusWithoutBody() throws Exception {
    Answer a = raw.exchange("HEAD /v2/" + "a".repeat(9_000) + "/manifests/x HTTP/1.1\r\nHost: m\r\n\r\n", true);
    assertThat(a.status()).isEqualTo(414);
    assertThat(a.header("Docker-Distribution-API-Version")).isEqualTo("registry/2.0");
    assertThat(a.after()).as("bytes after the 414's headers").isEmpty();
  }

  @Test
  void contentLengthWithTransferEncodingIsRefusedAndTheConnectionClosed() throws Exception {
    // The smuggled second request must never be answered: a proxy in front would take it as
    // part of the first one's body.
    Answer a = raw.exchange("GET /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: m\r\n\r\n", false);
    assertRefusal(a, 400);
    assertThat(a.closed()).as("connection closed right after the refusal").isTrue();
  }

  @Test
  void unknownTransferCodingsAreNotImplemented() throws Exception {
    for (String coding : List.of("gzip", "gzip, chunked", "x-" + "zz")) {
      Answer a = raw.exchange("GET /v2/ HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: " + coding + "\r\n\r\n", false);
      assertRefusal(a, 501);
      assertThat(a.closed()).isTrue();
    }
  }

  @Test
  void requestBodiesAreRefusedBrokenChunksIncluded() throws Exception {
    for (String body : List.of("Content-Length: 3\r\n\r\nabc", "Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n5\r\nabcdefgh\r\n\r\n", "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")) {
      Answer a = raw.exchange("GET /v2/ HTTP/1.1\r\nHost: m\r\n" + body, false);
      assertRefusal(a, 400);
      assertThat(a.closed()).isTrue();
    }
    Answer head = raw.exchange("HEAD /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 3\r\n\r\nabc", true);
    assertThat(head.status()).isEqualTo(400);
    assertThat(head.after()).as("no body on a HEAD's refusal").isEmpty();
  }

  @Test
  void unknownHttpVersionsGetAnOciError() throws Exception {
    for (String version : List.of("HTTP/1.2", "HTTP/2.0", "HTTP/9.9")) {
      Answer a = raw.exchange("GET /v2/ " + version + "\r\nHost: m\r\n\r\n", false);
      assertRefusal(a, 505);
    }
  }

  @Test
  void aTlsHandshakeOnThePlainPortIsClosedAtOnce() throws Exception {
    try (Socket socket = raw.open()) {
      socket.setSoTimeout(2_000);
      // The start of a TLS ClientHello record.
      socket.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x00, (byte) 0xa5, 0x01, 0x00, 0x00, (byte) 0xa1});
      InputStream in = socket.getInputStream();
      long started = System.nanoTime();
      assertThat(in.read()).as("end of stream").isEqualTo(-1);
      assertThat((System.nanoTime() - started) / 1_000_000).as("ms until closed").isLessThan(1_000);
    }
  }

  @Test
  void clientsAskingForHttp2AreServedOverHttp11() throws Exception {
    // h2c is off: no container client uses it, and it would let silent connections escape the caps.
    HttpClient h2 = HttpClient.newBuilder().version(HttpClient.Version.HTTP_2).build();
    HttpResponse<String> got = h2.send(HttpRequest.newBuilder(URI.create(mirror.url() + "/v2/")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.version()).isEqualTo(HttpClient.Version.HTTP_1_1);
  }

  private static void assertRefusal(Answer a, int status) {
    assertThat(a.status()).as("status").isEqualTo(status);
    assertThat(a.header("Docker-Distribution-API-Version")).isEqualTo("registry/2.0");
    assertThat(a.header("Content-Type")).isEqualTo("application/json");
    assertThat(new JsonObject(a.text()).getJsonArray("errors").getJsonObject(0).getString("code"))
        .isEqualTo("UNSUPPORTED");
  }
}
