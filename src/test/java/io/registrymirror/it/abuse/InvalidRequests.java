package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.AbuseRules.DIGEST;
import static io.registrymirror.it.abuse.AbuseRules.MARKER;
import static io.registrymirror.it.abuse.AbuseRules.TAG;
import static io.registrymirror.it.abuse.AbuseRules.isValidName;
import static io.registrymirror.it.abuse.Expectation.dropped;
import static io.registrymirror.it.abuse.Expectation.refused;
import static io.registrymirror.it.abuse.Expectation.refusedOrDropped;
import static java.nio.charset.StandardCharsets.ISO_8859_1;

import io.registrymirror.testing.ImageSeeder.Image;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Requests that are wrong in one respect each (so that the refusal can be checked) and that must
 * never reach upstream: names, tags, digests, methods, ranges, pagination, namespaces, query
 * encodings, oversized requests and broken HTTP.
 */
final class InvalidRequests extends RequestGenerator {

  InvalidRequests(SplittableRandom rnd, Image image) {
    super(rnd, image);
  }

  List<Case> generate(int count) {
    List<Supplier<Case>> kinds = List.of(this::badName, this::badTag, this::badDigest, this::badMethod,
        this::badRange, this::badPagination, this::badNamespace, this::badQueryEncoding, this::oversized,
        this::malformed);
    return roundRobin(kinds, count);
  }

  private Case badName() {
    String name;
    do {
      name = mutateName(validName());
    } while (isValidName(name));
    // A name with bytes that HTTP itself forbids in a request line never reaches the registry
    // API: it is refused as a request that is not valid HTTP.
    return new Case("bad name", getOrHead(), "/v2/" + name + "/" + endpoint(), someHeaders(), null, null,
        refused("NAME_INVALID", "NAME_UNKNOWN", "UNSUPPORTED"));
  }

  private String mutateName(String name) {
    List<String> parts = new ArrayList<>(List.of(name.split("/")));
    int at = rnd.nextInt(parts.size() + 1);
    switch (rnd.nextInt(10)) {
      case 0 -> {
        // Upper case anywhere, the marker included.
        String p = parts.get(at % parts.size());
        int i = rnd.nextInt(p.length());
        parts.set(at % parts.size(), p.substring(0, i) + p.substring(i).toUpperCase(Locale.ROOT));
        if (rnd.nextBoolean()) {
          parts.add(MARKER.toUpperCase(Locale.ROOT));
        }
      }
      case 1 -> parts.add(at, pick("..", ".", "...", "../..", "../../../../../../etc"));
      case 2 -> parts.add(at, pick("%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "%252e%252e", "..%2f..",
          "%2e%2e%2f%2e%2e"));
      case 3 -> {
        String sep = pick("%2f", "%2F", "%5c", "%5C", "\\", "%252f", "%c0%af");
        String joined = String.join("/", parts);
        int slash = joined.indexOf('/');
        return slash < 0 ? joined + sep + MARKER : joined.substring(0, slash) + sep + joined.substring(slash + 1);
      }
      case 4 -> {
        // Longer than 255 characters, though within the request line's limit.
        StringBuilder b = new StringBuilder(String.join("/", parts));
        int target = 256 + rnd.nextInt(3_000);
        while (b.length() < target) {
          b.append('/').append(word());
        }
        return b.toString();
      }
      case 5 -> {
        String joined = String.join("/", parts);
        return switch (rnd.nextInt(4)) {
          case 0 -> "/" + joined;
          case 1 -> joined + "/";
          case 2 -> joined.replaceFirst("/|$", "//");
          default -> joined + "///" + MARKER;
        };
      }
      case 6 -> {
        String p = parts.get(at % parts.size());
        String bad = pick("-", ".", "_", "___", ".-", "_.", "-.", "..");
        parts.set(at % parts.size(), switch (rnd.nextInt(3)) {
          case 0 -> bad + p;
          case 1 -> p + bad;
          default -> p.charAt(0) + bad + p;
        });
      }
      case 7 -> {
        String p = parts.get(at % parts.size());
        String bad = pick("%20", " ", "\t", "~", ":", "@", ";", "*", "%00", "%0a", "%0d%0a", "%c3%a9",
            "\u00c3\u00a9", "\u00e9", "\u0001", "\u007f", "\u0000", "$", "{", "}", "|", "^", "`", "!",
            "'", "(", ")", "+", ",", "=", "#", "&", "\"", "<", ">", "[", "]", "%ff%fe");
        int i = rnd.nextInt(p.length() + 1);
        parts.set(at % parts.size(), p.substring(0, i) + bad + p.substring(i));
      }
      case 8 -> parts.add(at, pick("ZQXABUSE", "ZqxAbuse", "Zqxabuse.Name", "zqxabuse..x", "zqxabuse-"));
      default -> {
        return pick("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2f..%2f..%2ftmp%2f" + MARKER, "..;/" + MARKER,
            "%2ftmp%2f" + MARKER, "~root/" + MARKER, "." + MARKER, MARKER + "/.", "C:%5c" + MARKER);
      }
    }
    return String.join("/", parts);
  }

  private Case badTag() {
    String tag;
    do {
      tag = switch (rnd.nextInt(14)) {
        case 0 -> "-" + validTag();
        case 1 -> "." + validTag();
        case 2 -> validTag() + "a".repeat(128 + rnd.nextInt(400));
        case 3 -> validTag() + pick("%20x", " x", "\tx");
        case 4 -> pick("%2e%2e", "..", ".", "%2E", "..%2f..%2fetc");
        case 5 -> validTag() + pick("%00", "\u0000", "\u0001", "\u007f", "%0a");
        case 6 -> validTag() + pick(";rm", "@x", "*", "$", "!", "~", "=", "+x", ",", "{x}", "%2f" + MARKER);
        case 7 -> pick("%c3%a9", "\u00c3\u00a9", "\u00e9t\u00e9", "%ff");
        case 8 -> "";
        case 9 -> validTag() + "%2f..%2f.." + MARKER;
        case 10 -> "_" + "x".repeat(128);
        case 11 -> MARKER + pick("#frag", "%23", "%3f", "%25");
        case 12 -> "~" + MARKER;
        default -> pick("-", "--", "-" + MARKER, "." + MARKER);
      };
    } while (TAG.matcher(tag).matches());
    // As for names: a tag with bytes that no request line may carry is refused as invalid HTTP.
    return new Case("bad tag", getOrHead(), "/v2/" + validName() + "/manifests/" + tag, someHeaders(), null,
        null, refused("TAG_INVALID", "DIGEST_INVALID", "NAME_UNKNOWN", "NAME_INVALID", "UNSUPPORTED"));
  }

  private Case badDigest() {
    String endpoint = pick("manifests/", "blobs/", "referrers/");
    String digest;
    do {
      digest = switch (rnd.nextInt(16)) {
        case 0 -> "sha256:" + hex(rnd.nextBoolean() ? 63 : 65);
        case 1 -> "sha256:" + hex(64).toUpperCase(Locale.ROOT);
        case 2 -> "sha256:" + hex(63) + pick("g", "G", "z", "-", "=", "_");
        case 3 -> pick("md5:" + hex(32), "sha1:" + hex(40), "sha384:" + hex(96), "blake3:" + hex(64),
            "sha224:" + hex(56));
        case 4 -> "sha512:" + hex(rnd.nextBoolean() ? 64 : 127);
        case 5 -> pick("SHA256:", "Sha256:", "sha-256:", "sha_256:") + hex(64);
        case 6 -> "sha256+b64:" + "dGhpcyBpcyBub3QgYSBkaWdlc3Q" + MARKER;
        case 7 -> pick("sha256::", ":", "sha256", "sha256:", "::") + hex(64);
        case 8 -> "sha256:" + hex(64) + "a".repeat(200 + rnd.nextInt(200));
        case 9 -> "sha256:%2e%2e%2f" + hex(55);
        case 10 -> "sha256%3a" + hex(64);
        case 11 -> "sha256:" + hex(64) + pick("%00", "\u0000", "%0a", "%20", "\u0001");
        case 12 -> pick("latest", MARKER, "sha256", "", "-");
        case 13 -> "sha256:" + pick("../../../../etc/passwd", "..%2f..%2f" + MARKER, "%2e%2e");
        case 14 -> "sha256:" + hex(62) + pick("\u00e9", "%c3%a9", "\u00c3\u00a9");
        default -> "sha256:" + hex(64) + ":" + hex(64);
      };
      // A manifest reference without a colon is a tag: it must not be a valid one either.
    } while (DIGEST.matcher(digest).matches() || endpoint.equals("manifests/") && TAG.matcher(digest).matches());
    return new Case("bad digest", endpoint.equals("referrers/") ? "GET" : getOrHead(),
        "/v2/" + validName() + "/" + endpoint + digest, someHeaders(), null, null,
        refused("DIGEST_INVALID", "TAG_INVALID", "NAME_UNKNOWN", "NAME_INVALID"));
  }

  private Case badMethod() {
    String method = pick("PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
        "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PURGE", "LINK", "SEARCH", "FOO", "get", "Get", "head",
        "GETS", "M-SEARCH", MARKER.toUpperCase(Locale.ROOT));
    String target = method.equals("CONNECT") && rnd.nextBoolean() ? pick("127.0.0.1:22", "mirror.test:443")
        : method.equals("OPTIONS") && rnd.nextBoolean() ? "*"
        : pick("/v2/", "/v2/" + image.repo() + "/manifests/" + image.tag(),
            "/v2/" + image.repo() + "/manifests/" + image.manifestDigest(),
            "/v2/" + image.repo() + "/blobs/" + image.layerDigests().get(0),
            "/v2/" + image.repo() + "/blobs/uploads/", "/v2/" + image.repo() + "/blobs/uploads/" + MARKER,
            "/v2/" + image.repo() + "/tags/list", "/v2/" + validName() + "/manifests/" + validTag(),
            "/healthz", "/readyz", "/metrics", "/nowhere/" + MARKER);
    List<String[]> headers = new ArrayList<>(someHeaders());
    byte[] body = null;
    switch (rnd.nextInt(3)) {
      case 0 -> {
        body = ("{\"" + MARKER + "\":" + rnd.nextInt() + "}").getBytes(ISO_8859_1);
        headers.add(new String[] {"Content-Type", "application/json"});
        headers.add(new String[] {"Content-Length", Integer.toString(body.length)});
      }
      case 1 -> {
        body = ("5\r\n" + MARKER.substring(0, 5) + "\r\n0\r\n\r\n").getBytes(ISO_8859_1);
        headers.add(new String[] {"Transfer-Encoding", "chunked"});
      }
      default -> {
        // no body
      }
    }
    return new Case("method not allowed", method, target, headers, body, null,
        refused("UNSUPPORTED", "NAME_UNKNOWN"));
  }

  private Case badRange() {
    String range = switch (rnd.nextInt(12)) {
      case 0 -> "bytes=" + pick("abc", "x-", "-x", "a-b", MARKER);
      case 1 -> {
        int a = 1 + rnd.nextInt(1_000_000);
        yield "bytes=" + a + "-" + rnd.nextInt(a);
      }
      case 2 -> "bytes=" + pick("--1", "1-2-3", "-", "", " ", ",", "0-1,,2-3", "-0", "0--1");
      case 3 -> "bytes=" + "9".repeat(19 + rnd.nextInt(40)) + "-";
      case 4 -> "bytes=0-" + "9".repeat(19 + rnd.nextInt(40));
      case 5 -> "bytes=0-1," + pick("abc", "5-1", "-", "x-y");
      case 6 -> "bytes=" + pick("1.5-2", "+1-2", "0x10-0x20", "1e3-2e3", "\u0661-\u0662", "1 2-3");
      case 7 -> pick("Bytes=", "BYTES=", "bYtEs=") + pick("abc", "9-1", "--");
      case 8 -> {
        // Many valid ranges with one bad one at the end: the whole header is malformed.
        StringBuilder b = new StringBuilder("bytes=");
        int n = 10 + rnd.nextInt(500);
        for (int i = 0; i < n; i++) {
          b.append(i).append('-').append(i + rnd.nextInt(3)).append(',');
        }
        yield b.append("oops").toString();
      }
      case 9 -> "bytes=-" + "1".repeat(20);
      case 10 -> "bytes=" + (rnd.nextInt(100) + 50) + "-" + rnd.nextInt(50);
      default -> "bytes=0-1, 5-1";
    };
    String digest = rnd.nextBoolean() ? pick(image.layerDigests().toArray(String[]::new)) : missingDigest();
    String name = rnd.nextBoolean() ? image.repo() : validName();
    List<String[]> headers = new ArrayList<>(someHeaders());
    headers.add(new String[] {"Range", range});
    return new Case("malformed range", getOrHead(), "/v2/" + name + "/blobs/" + digest, headers, null, null,
        refused("RANGE_INVALID"));
  }

  private Case badPagination() {
    String n = pick("-1", "abc", "1e9", "99999999999", "1234567890", "0x10", "%20", "1%00", "%2b5", "5.0", "",
        "%2d1", "%d9%a3", "1,2", "9".repeat(500), "-0", "1%20", "%201", MARKER, "%ef%bc%91");
    String last = pick("", "-x", ".x", "%2e%2e", "..", "a%2fb", "x".repeat(129), "a%20b", "%00", "-" + MARKER);
    String query = switch (rnd.nextInt(3)) {
      case 0 -> "n=" + n;
      case 1 -> "last=" + last;
      default -> "n=" + n + "&last=" + last;
    };
    String name = rnd.nextBoolean() ? image.repo() : validName();
    return new Case("bad pagination", "GET", "/v2/" + name + "/tags/list?" + query, someHeaders(), null, null,
        refused("PAGINATION_NUMBER_INVALID", "TAG_INVALID"));
  }

  private Case badNamespace() {
    String ns = pick("evil.example", "%2e%2e%2f%2e%2e", "..", "LOCAL", "Local", "local%00", "local.evil", "",
        "127.0.0.1:22", "localhost", "docker.io", MARKER, "local/..", "local%2f..", "local%20", "%20local",
        "http://evil.example");
    String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint() + "?ns=" + ns;
    return new Case("unknown namespace", getOrHead(), target, someHeaders(), null, null, refused("NAME_UNKNOWN"));
  }

  private Case badQueryEncoding() {
    String bad = pick("%ZZ", "%", "%G1", "%2", "%zz" + MARKER, "%%", "%u0041", "%e9%");
    String endpoint = endpoint();
    String param = endpoint.equals("tags/list") ? pick("n", "last", "ns") : "ns";
    String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint + "?" + param
        + "=" + bad;
    return new Case("undecodable query", getOrHead(), target, someHeaders(), null, null, refused());
  }

  private Case oversized() {
    String target = "/v2/" + (rnd.nextBoolean() ? image.repo() : validName()) + "/" + endpoint();
    List<String[]> headers = new ArrayList<>();
    switch (rnd.nextInt(5)) {
      case 0 -> headers.add(new String[] {"X-" + MARKER, "a".repeat(8_300 + rnd.nextInt(8_000))});
      case 1 -> {
        // Beyond the 8 KiB the server allows for all headers together.
        int n = 600 + rnd.nextInt(300);
        for (int i = 0; i < n; i++) {
          headers.add(new String[] {"X-" + MARKER + "-" + i, word()});
        }
      }
      case 2 -> {
        int n = 600 + rnd.nextInt(300);
        for (int i = 0; i < n; i++) {
          headers.add(new String[] {"Range", "bytes=" + i + "-" + (i + 1)});
        }
      }
      case 3 -> headers.add(new String[] {"Cookie", (MARKER + "=1; ").repeat(800 + rnd.nextInt(300))});
      default -> target = "/v2/" + validName() + "/tags/list?last=" + "a".repeat(4_100 + rnd.nextInt(4_000));
    }
    return new Case("oversized request", getOrHead(), target, headers, null, null, refused());
  }

  /** Requests whose HTTP itself is broken; all name invalid repositories, so none may go upstream. */
  private Case malformed() {
    String bad = "/v2/" + MARKER.toUpperCase(Locale.ROOT) + "/manifests/" + validTag();
    String c = "Host: mirror.test\r\nConnection: close\r\n";
    String method = "GET";
    String wire;
    Expectation expect = refused();
    switch (rnd.nextInt(14)) {
      case 0 -> wire = "GET /v2/a" + pick("\u0000", "\u0001", "\u007f", "\r", " ", "\t")
          + "b/manifests/x HTTP/1.1\r\n" + c + "\r\n";
      case 1 -> wire = "GET " + bad + " HTTP/1.1\r\nHost: mirror.test\nConnection: close\n\n";
      case 2 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + pick("Range : bytes=0-1", "R\u0001nge: x",
          "X-A: \u0001\u007f", "No colon here", ": empty-name", "X-A:\u0000") + "\r\n\r\n";
      case 3 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "X-Folded: a\r\n " + MARKER + "\r\n\r\n";
      case 4 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + pick("Content-Length: -1", "Content-Length: abc",
          "Content-Length: 1\r\nContent-Length: 2", "Content-Length: 99999999999999999999") + "\r\n\r\n";
      case 5 -> {
        wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Transfer-Encoding: chunked\r\n\r\n"
            + pick("zz", "-1", "ffffffffffffffffff", "5\r\nabcdefgh") + "\r\n\r\n";
        expect = refusedOrDropped();
      }
      case 6 -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
          + "0\r\n\r\n";
      case 7 -> wire = "GET http://evil.example" + bad + " HTTP/1.1\r\n" + c + "\r\n";
      case 8 -> wire = "GET " + pick("*", "v2/x", "evil.example:80", "//evil.example/v2/X/manifests/a")
          + " HTTP/1.1\r\n" + c + "\r\n";
      case 9 -> wire = "\r\n\r\nGET " + bad + " HTTP/1.1\r\n" + c + "\r\n";
      case 10 -> wire = "GET " + bad + "\r\n" + c + "\r\n";
      case 11 -> {
        String garbage = pick("\u0000\u0001\u0002", "\u0016\u0003\u0001\u0000", "GARBAGE", "\u00ff\u00fe");
        wire = garbage + MARKER + "\r\n\r\n";
        if (garbage.charAt(0) == 0x16) {
          // The start of a TLS handshake: a client speaking https to the plain port.
          expect = dropped();
        }
      }
      case 12 -> {
        method = "HEAD";
        wire = "HEAD " + bad + " HTTP/1.0\r\n\r\n";
      }
      default -> wire = "GET " + bad + " HTTP/1.1\r\n" + c + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    }
    return new Case("malformed HTTP", method, bad, List.of(), null, wire.getBytes(ISO_8859_1), expect);
  }
}
