package io.registrymirror.it.abuse;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import io.registrymirror.testing.RawHttp;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Slow clients: a thousand connections from one address that send a byte a second and never
 * finish their headers. The mirror holds only as many as {@code limits.connectionsPerClient}
 * allows, closes them all at {@code limits.headerTimeout}, and meanwhile a pull from another
 * address takes about as long as without them.
 */
class AbuseSlowClientsTest extends AbuseTestBase {

  /** The slow clients: how many, and where they come from. */
  private static final int SLOW_CLIENTS = 1_000;
  private static final String SLOW_ADDRESS = "127.0.0.2";

  @Test
  void slowClientsAreHeldOnlyBrieflyAndOnlySoManyWhilePullsGoOn(@TempDir Path work) throws Exception {
    underStraceWithSlowClientLimits(work, "slow clients", s -> {
      pullIntact(s.softly(), s.client(), image);
      s.figures().pullAlone = pullIntact(s.softly(), s.client(), image);
      slowClients(s.softly(), s.figures(), s.mirror().hostPort(), s.client());
      // Afterwards the image pulled while they were held is still served exactly.
      pullIntact(s.softly(), s.client(), image);
    });
  }

  /**
   * Opens {@link #SLOW_CLIENTS} connections from {@link #SLOW_ADDRESS} that each send part of a
   * request line and then a byte a second, never finishing their headers.
   */
  private static void slowClients(SoftAssertions softly, AbuseFigures figures, String hostPort, AbuseClient client)
      throws Exception {
    figures.slowClients = true;
    figures.slowOpened = SLOW_CLIENTS;
    figures.slowPerClient = CONNECTIONS_PER_CLIENT;
    figures.headerTimeoutSeconds = HEADER_TIMEOUT.toSeconds();
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
      figures.slowHeld = openAfter(sockets, opened + TimeUnit.SECONDS.toNanos(3), CONNECTIONS_PER_CLIENT);
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
    softly.assertThat(figures.slowHeld).as("slow connections held at once").isEqualTo(CONNECTIONS_PER_CLIENT);
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
}
