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

  /**
   * The password in a secret file's text: without the one line ending that editors and
   * {@code kubectl create secret --from-file} leave behind.
   */
  public static String passwordOf(String fileText) {
    if (fileText.endsWith("\n")) {
      return fileText.substring(0, fileText.length() - (fileText.endsWith("\r\n") ? 2 : 1));
    }
    return fileText;
  }

  /** The same user with another password, as a rotated secret file gives it. */
  public Credentials withPassword(String newPassword) {
    return new Credentials(username, newPassword);
  }

  /**
   * Checked credentials, from the file or the environment, or null when neither part is set;
   * the keys name where each part came from.
   */
  static Credentials checked(String userKey, String username, String passwordKey, String password) {
    if (username == null && password == null) {
      return null;
    }
    if (username == null || username.isEmpty()) {
      throw new ConfigException(userKey, "missing: a password needs a user name");
    }
    if (password == null) {
      throw new ConfigException(passwordKey, "missing: a user name needs a password");
    }
    if (username.indexOf(':') >= 0 || username.chars().anyMatch(Character::isISOControl)) {
      throw new ConfigException(userKey, "must not contain ':' or control characters");
    }
    return new Credentials(username, password);
  }

  @Override
  public String toString() {
    return "Credentials[username=" + username + ", password=***]";
  }
}
