package io.registrymirror.config;

import java.time.Duration;

/**
 * What one client may hold of the listener: how long it may take to send a request's headers,
 * how many connections it and everyone together may keep open, and how many wrong passwords it
 * may try.
 *
 * @param headerTimeout from a connection's opening, or the end of its previous answer, until the
 *     next request's headers are complete
 * @param connections connections open at once, all clients together
 * @param connectionsPerClient connections open at once from one client address
 * @param loginFailures failed logins one client address may make per {@code loginFailureWindow}
 * @param loginFailureWindow how long failed logins count against their address
 * @param sendTimeout how long a client's socket may take nothing of a blob read for it before
 *     the client is cut, so that clients that stop reading cannot hold memory
 */
public record LimitsConfig(Duration headerTimeout, int connections, int connectionsPerClient, int loginFailures,
    Duration loginFailureWindow, Duration sendTimeout) {

  public static LimitsConfig defaults() {
    return new LimitsConfig(Duration.ofSeconds(20), 4096, 512, 10, Duration.ofMinutes(1), Duration.ofSeconds(30));
  }
}
