package io.registrymirror.config;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The users allowed to pull, from an htpasswd file of bcrypt entries.
 *
 * @param file where they were read from
 * @param hashes each user's bcrypt hash
 */
public record Htpasswd(Path file, Map<String, String> hashes) {

  private static final Pattern BCRYPT = Pattern.compile("\\$2[abxy]?\\$\\d{2}\\$[./A-Za-z0-9]{53}");

  public Htpasswd {
    hashes = Map.copyOf(hashes);
  }

  /**
   * Reads the entries of an htpasswd file; only bcrypt, the one kind of hash worth accepting
   * today. A file with a line that is not an entry, or with no users, is refused as a whole.
   *
   * @param key the configuration key that named the file, for the message
   */
  public static Htpasswd parse(String key, Path file, String text) {
    List<String> lines = text.lines().toList();
    Map<String, String> hashes = new LinkedHashMap<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int colon = line.indexOf(':');
      String hash = colon < 0 ? "" : line.substring(colon + 1);
      if (colon <= 0 || !BCRYPT.matcher(hash).matches()) {
        throw new ConfigException(key, file + " line " + (i + 1)
            + ": not user:bcrypt-hash (make entries with htpasswd -B)");
      }
      hashes.put(line.substring(0, colon), hash);
    }
    if (hashes.isEmpty()) {
      throw new ConfigException(key, file + " holds no users");
    }
    return new Htpasswd(file, hashes);
  }

  /** The highest bcrypt cost among the users: what a check against an unknown user must spend too. */
  public int cost() {
    return hashes.values().stream().mapToInt(h -> Integer.parseInt(h.substring(h.lastIndexOf('$') - 2,
        h.lastIndexOf('$')))).max().orElse(10);
  }

  @Override
  public String toString() {
    return "Htpasswd[file=" + file + ", users=" + hashes.size() + "]";
  }
}
