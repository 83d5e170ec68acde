package io.registrymirror.config;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * A user name and password for an upstream registry. {@link #toString()} leaves the password
 * out, so that no log line or error message can carry it by accident.
 */
public record Credentials(String username, String password) {

  /** The value of a Basic {@code Authorization} header (RFC 7617). */
  public String basic() {
    return "Basic " + Base64.getEncoder()
        .encodeToString((username + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public String toString() {
    return "Credentials[username=" + username + ", password=***]";
  }
}
