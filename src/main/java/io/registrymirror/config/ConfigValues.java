package io.registrymirror.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.registrymirror.oci.HttpUrl;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads single values of the configuration (durations, sizes, URLs, files, lists) and checks
 * their shape; every message names the key, and never a secret's content.
 */
final class ConfigValues {

  private static final Pattern SIZE = Pattern.compile("(\\d{1,12})(B|KiB|MiB|GiB|TiB)?");
  private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h|d)");

  /** The longest duration any key takes: "never", for all practical purposes. */
  private static final Duration MAX_DURATION = Duration.ofDays(36_500);

  private ConfigValues() {}

  record HostPort(String host, int port) {}

  /** A PEM file that can be read and holds what {@code marker} says, checked now rather than at the first client. */
  static Path readable(String key, String file, String marker) {
    if (!readText(key, file).contains(marker)) {
      throw new ConfigException(key, file + " is not a PEM file with a '" + marker + "' block");
    }
    return Path.of(file);
  }

  /** A password kept in a file, as a mounted Kubernetes Secret is; one trailing newline is not part of it. */
  static String readSecret(String key, String file) {
    return Credentials.passwordOf(readText(key, file));
  }

  /** The items of the list under {@code key}'s last part, each read with its own key, e.g. {@code tags.rules[2]}. */
  static <T> List<T> list(JsonNode parent, String key, String what, BiFunction<String, JsonNode, T> item) {
    List<T> out = new ArrayList<>();
    JsonNode list = parent.get(key.substring(key.lastIndexOf('.') + 1));
    if (list == null) {
      return out;
    }
    if (!list.isArray()) {
      throw new ConfigException(key, "must be a list of " + what);
    }
    for (int i = 0; i < list.size(); i++) {
      out.add(item.apply(key + "[" + i + "]", list.get(i)));
    }
    return out;
  }

  /** An absolute http(s) URL with a host. */
  static URI httpUrl(String key, String value) {
    URI uri;
    try {
      uri = new URI(value);
    } catch (URISyntaxException e) {
      throw new ConfigException(key, "not a URL: '" + value + "'");
    }
    if (!HttpUrl.isHttp(uri)) {
      throw new ConfigException(key, "must be an http:// or https:// URL with a host: '" + value + "'");
    }
    return uri;
  }

  /** A whole number of at least {@code min}. */
  static int count(JsonNode node, String parent, String field, int fallback, int min) {
    if (!node.has(field)) {
      return fallback;
    }
    JsonNode value = node.get(field);
    if (!value.canConvertToInt() || !value.isIntegralNumber() || value.intValue() < min) {
      throw new ConfigException(parent + "." + field, "must be a whole number of at least " + min);
    }
    return value.intValue();
  }

  /** A registry's root URL: an http(s) URL without path, query, fragment or credentials. */
  static URI url(String key, String value) {
    URI uri = httpUrl(key, value);
    if (uri.getRawQuery() != null || uri.getRawFragment() != null || uri.getRawUserInfo() != null) {
      throw new ConfigException(key, "must not carry a query, fragment or credentials: '" + value + "'");
    }
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    if (!path.isEmpty() && !path.equals("/")) {
      throw new ConfigException(key, "must be the registry root, without a path: '" + value + "'");
    }
    return URI.create(uri.getScheme().toLowerCase(Locale.ROOT) + "://" + uri.getRawAuthority());
  }

  /** One of {@code type}'s constants, named in any case: {@code json}, {@code JSON}. */
  static <E extends Enum<E>> E choice(String key, String value, Class<E> type) {
    for (E constant : type.getEnumConstants()) {
      if (constant.name().equalsIgnoreCase(value)) {
        return constant;
      }
    }
    throw new ConfigException(key, "not one of " + String.join(", ", Arrays.stream(type.getEnumConstants())
        .map(c -> c.name().toLowerCase(Locale.ROOT)).toList()) + ": '" + value + "'");
  }

  /** {@code parent} is empty for a top-level key. */
  static Duration duration(JsonNode node, String parent, String field, Duration fallback) {
    if (!node.has(field)) {
      return fallback;
    }
    String key = parent.isEmpty() ? field : parent + "." + field;
    Matcher m = matching(node.get(field), key, DURATION, "a duration like 500ms, 30s, 5m, 1h or 7d");
    Duration d;
    try {
      long n = Long.parseLong(m.group(1));
      d = switch (m.group(2)) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        case "m" -> Duration.ofMinutes(n);
        case "h" -> Duration.ofHours(n);
        default -> Duration.ofDays(n);
      };
    } catch (NumberFormatException | ArithmeticException e) {
      d = null;
    }
    // Durations are used as milliseconds and added to clock times: a longer one would overflow.
    if (d == null || d.compareTo(MAX_DURATION) > 0) {
      throw new ConfigException(key, "must be at most " + MAX_DURATION.toDays() + "d (100 years): '"
          + m.group() + "'");
    }
    if (d.isZero() && !Set.of("tagTtl", "refreshInterval", "ttl", "scrubInterval").contains(field)) {
      throw new ConfigException(key, "must be more than zero");
    }
    return d;
  }

  /** A size such as {@code 0}, {@code 512B}, {@code 16KiB}, {@code 1MiB} or {@code 50GiB}. */
  static long size(JsonNode node, String parent, String field, long fallback) {
    if (!node.has(field)) {
      return fallback;
    }
    Matcher m = matching(node.get(field), parent + "." + field, SIZE, "a size like 0, 512B, 16KiB, 1MiB or 50GiB");
    long n = Long.parseLong(m.group(1));
    int shift = switch (m.group(2) == null ? "" : m.group(2)) {
      case "KiB" -> 10;
      case "MiB" -> 20;
      case "GiB" -> 30;
      case "TiB" -> 40;
      default -> 0;
    };
    if (n > Long.MAX_VALUE >> shift) {
      // Shifted further, it would wrap around to a small or negative size without a word.
      throw new ConfigException(parent + "." + field, "too large: '" + m.group() + "'");
    }
    return n << shift;
  }

  static Matcher matching(JsonNode value, String key, Pattern pattern, String expected) {
    String text = text(value, key);
    Matcher m = pattern.matcher(text);
    if (!m.matches()) {
      throw new ConfigException(key, "not " + expected + ": '" + text + "'");
    }
    return m;
  }

  static HostPort hostPort(String key, String value) {
    int colon = value.lastIndexOf(':');
    if (colon < 0) {
      throw new ConfigException(key, "must be host:port, e.g. 0.0.0.0:5000: '" + value + "'");
    }
    String host = value.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    if (host.isEmpty()) {
      host = "0.0.0.0";
    }
    int port;
    try {
      port = Integer.parseInt(value.substring(colon + 1));
    } catch (NumberFormatException e) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      throw new ConfigException(key, "port must be a number from 0 to 65535: '" + value + "'");
    }
    return new HostPort(host, port);
  }

  static Path path(String key, String value) {
    if (value.isBlank() || value.indexOf('\0') >= 0) {
      throw new ConfigException(key, "must be a directory path");
    }
    return Path.of(value);
  }

  static String text(JsonNode node, String key) {
    if (node == null || !node.isValueNode() || node.isNull()) {
      throw new ConfigException(key, "must be a single value");
    }
    return node.asText();
  }

  /** A top-level mapping that may hold only {@code keys}. */
  static JsonNode section(JsonNode root, String name, String... keys) {
    JsonNode node = root.get(name);
    requireObject(node, name);
    checkKeys(node, name + ".", Set.of(keys));
    return node;
  }

  /** A whole file's text; the message names the key that pointed at it, never its content. */
  static String readText(String key, String file) {
    try {
      return Files.readString(Path.of(file), StandardCharsets.UTF_8);
    } catch (IOException | RuntimeException e) {
      throw new ConfigException(key, "cannot read " + file + " (" + e.getClass().getSimpleName() + ")");
    }
  }

  static void requireObject(JsonNode node, String key) {
    if (node == null || !node.isObject()) {
      throw new ConfigException(key, "must be a mapping of keys to values");
    }
  }

  static void checkKeys(JsonNode node, String prefix, Set<String> known) {
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!known.contains(name)) {
        throw new ConfigException(prefix + name, "unknown key (known here: "
            + String.join(", ", known.stream().sorted().toList()) + ")");
      }
    }
  }
}
