package io.registrymirror.config;

import java.nio.file.Path;
import java.util.Map;

/**
 * The users allowed to pull, from an htpasswd file of bcrypt entries.
 *
 * @param file where they were read from
 * @param hashes each user's bcrypt hash
 */
public record Htpasswd(Path file, Map<String, String> hashes) {

  public Htpasswd {
    hashes = Map.copyOf(hashes);
  }

  @Override
  public String toString() {
    return "Htpasswd[file=" + file + ", users=" + hashes.size() + "]";
  }
}
