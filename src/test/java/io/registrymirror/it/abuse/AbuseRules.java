package io.registrymirror.it.abuse;

import io.registrymirror.testing.Forwarder.Seen;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the abuse suite holds requests and answers to: the marker that makes anything derived from
 * a request recognisable, the error codes an answer may carry, and the spec's grammars, written
 * out here rather than taken from the code under test, by which a request sent upstream is judged.
 */
final class AbuseRules {

  /** Put into names, tags and headers so that anything derived from them is recognisable in a trace. */
  static final String MARKER = "zqxabuse";

  /** The error codes of the distribution spec, and those the mirror adds for ranges and tags. */
  static final Set<String> KNOWN_CODES = Set.of("BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID",
      "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID",
      "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED",
      "UNSUPPORTED", "TOOMANYREQUESTS", "RANGE_INVALID", "PAGINATION_NUMBER_INVALID", "TAG_INVALID");

  /** The grammars of the distribution spec, written out here rather than taken from the code under test. */
  static final Pattern NAME = Pattern.compile(
      "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*");
  static final Pattern TAG = Pattern.compile("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  static final Pattern DIGEST = Pattern.compile("sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}");

  private AbuseRules() {
  }

  /** Why an upstream request is not a valid read of the distribution API, or null when it is. */
  static String invalidUpstreamRequest(Seen seen) {
    for (Map.Entry<String, String> h : seen.headers()) {
      if ((h.getKey() + h.getValue()).toLowerCase(Locale.ROOT).contains(MARKER)) {
        return "client header passed upstream: " + h + " in " + seen.uri();
      }
    }
    String uri = seen.uri();
    int q = uri.indexOf('?');
    String path = q < 0 ? uri : uri.substring(0, q);
    String query = q < 0 ? null : uri.substring(q + 1);
    if (!path.startsWith("/v2/")) {
      return "not an API path: " + uri;
    }
    String rest = path.substring(4);
    if (rest.endsWith("/tags/list")) {
      String name = rest.substring(0, rest.length() - "/tags/list".length());
      Matcher listing = Pattern.compile("(?:n=(\\d{1,5}))?&?(?:last=(.*))?").matcher(query == null ? "" : query);
      boolean queryOk = listing.matches() && (listing.group(1) == null || Integer.parseInt(listing.group(1)) <= 10_000)
          && (listing.group(2) == null || TAG.matcher(listing.group(2)).matches());
      return isValidName(name) && queryOk ? null : "invalid tag listing: " + uri;
    }
    Matcher m = Pattern.compile("(.+)/(manifests|blobs|referrers)/([^/]+)").matcher(rest);
    if (!m.matches() || !isValidName(m.group(1))) {
      return "invalid name or endpoint: " + uri;
    }
    String ref = m.group(3);
    boolean refOk = DIGEST.matcher(ref).matches() || m.group(2).equals("manifests") && TAG.matcher(ref).matches();
    boolean queryOk = query == null
        || m.group(2).equals("referrers") && query.matches("artifactType=[A-Za-z0-9%._+-]+");
    return refOk && queryOk ? null : "invalid reference or query: " + uri;
  }

  static boolean isValidName(String name) {
    return name.length() <= 255 && NAME.matcher(name).matches();
  }
}
