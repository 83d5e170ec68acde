package io.registrymirror.it.abuse;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What one abuse test tried and saw, printed in one block for the README's security section:
 * each test prints the lines of what it measured.
 */
final class AbuseFigures {

  private final String title;
  final Map<String, Integer> tried = new TreeMap<>();
  int serverErrors;
  boolean mirrorAlive;
  int pathsFromRequestsOutside;
  int writtenOutside;
  int connects;
  int localConnects;
  List<String> foreignConnects = List.of();
  /** Whether the slow-client figures below were measured. */
  boolean slowClients;
  int slowOpened;
  int slowHeld;
  int slowPerClient;
  int slowRefused;
  int slowOpenAfterDeadline;
  long headerTimeoutSeconds;
  long slowAllClosedMs = -1;
  long pullAlone;
  long pullDuringSlow;

  AbuseFigures(String title) {
    this.title = title;
  }

  void print() {
    StringBuilder b = new StringBuilder("\n==== abuse suite figures: " + title + " ====\n");
    if (!tried.isEmpty()) {
      int total = tried.values().stream().mapToInt(Integer::intValue).sum();
      b.append(String.format("requests tried: %,d%n", total));
      tried.forEach((kind, n) -> b.append(String.format("  %-36s %,6d%n", kind, n)));
      b.append(String.format("answers with a 5xx status: %d%n", serverErrors));
    }
    b.append(String.format("mirror processes killed: %d%n", mirrorAlive ? 0 : 1));
    b.append(String.format("files touched outside the cache with a path from a request: %d;"
        + " files written outside the cache: %d%n", pathsFromRequestsOutside, writtenOutside));
    b.append(String.format("connections to hosts other than the upstream: %d (of %d connect calls;"
        + " %d to local sockets, e.g. the name service cache)%n", foreignConnects.size(), connects, localConnects));
    if (slowClients) {
      b.append(String.format("slow clients (a byte a second, from one address): %,d opened, %d held at once"
          + " (limits.connectionsPerClient: %d), %d refused at once, %d still open after limits.headerTimeout"
          + " (%ds); all closed %d ms after opening%n", slowOpened, slowHeld, slowPerClient, slowRefused,
          slowOpenAfterDeadline, headerTimeoutSeconds, slowAllClosedMs));
      b.append(String.format("a pull from another address: %d ms alone, %d ms while the slow clients were held%n",
          pullAlone, pullDuringSlow));
    }
    b.append("==============================");
    System.out.println(b);
  }
}
