package io.registrymirror.config;

import io.registrymirror.oci.Digest;
import java.time.Duration;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Settings for the tags that match a pair of globs ({@code *} any run of characters, {@code ?}
 * one): rules are tried in order, and for each setting the first matching rule that has it wins.
 *
 * @param repositories glob on the repository name, e.g. {@code library/*}
 * @param tags glob on the tag, e.g. {@code latest} or {@code *-dev}
 * @param ttl how long a resolution is trusted; null to leave it to later rules or the upstream
 * @param pin whether the tag is frozen on the digest first seen (or {@link #pinnedDigest})
 * @param pinnedDigest the digest to serve when frozen; null for the first one seen
 * @param warm the platforms ({@code os/architecture[/variant]}) whose manifest and blobs are
 *     fetched into the cache when the tag moves; empty for none
 */
public record TagRule(String repositories, String tags, Duration ttl, boolean pin, Digest pinnedDigest,
    List<String> warm) {

  public TagRule {
    warm = List.copyOf(warm);
  }

  public boolean matches(String repository, String tag) {
    return glob(repositories).matcher(repository).matches() && glob(tags).matcher(tag).matches();
  }

  static Pattern glob(String glob) {
    StringBuilder regex = new StringBuilder();
    for (char c : glob.toCharArray()) {
      switch (c) {
        case '*' -> regex.append(".*");
        case '?' -> regex.append('.');
        default -> regex.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return Pattern.compile(regex.toString());
  }
}
