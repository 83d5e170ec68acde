package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.AbuseRules.MARKER;
import static io.registrymirror.it.abuse.Expectation.anyAnswer;
import static io.registrymirror.it.abuse.Expectation.content;
import static io.registrymirror.it.abuse.Expectation.unknown;
import static java.nio.charset.StandardCharsets.ISO_8859_1;

import io.registrymirror.testing.ImageSeeder;
import io.registrymirror.testing.ImageSeeder.Image;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Valid requests for things upstream lacks, and valid requests with hostile headers, queries or
 * targets: these may go upstream, but only as valid requests carrying nothing of the client's.
 */
final class HostileRequests extends RequestGenerator {

  HostileRequests(SplittableRandom rnd, Image image) {
    super(rnd, image);
  }

  List<Case> generate(int count) {
    List<Supplier<Case>> kinds = List.of(this::missingManifest, this::missingBlob, this::missingTagList,
        this::missingReferrers, this::rangeOnContent, this::manifestWithHostileHeaders, this::junkQuery,
        this::manyHeaders, this::absoluteForm);
    return roundRobin(kinds, count);
  }

  private Case missingManifest() {
    String ref = rnd.nextBoolean() ? validTag() : missingDigest();
    return new Case("missing manifest", getOrHead(), "/v2/" + validName() + "/manifests/" + ref, someHeaders(),
        null, null, unknown("MANIFEST_UNKNOWN", "NAME_UNKNOWN"));
  }

  private Case missingBlob() {
    List<String[]> headers = new ArrayList<>(someHeaders());
    if (rnd.nextInt(3) == 0) {
      headers.add(new String[] {"Range", "bytes=" + rnd.nextInt(100) + "-" + (100 + rnd.nextInt(100))});
    }
    String name = rnd.nextInt(4) == 0 ? image.repo() : validName();
    return new Case("missing blob", getOrHead(), "/v2/" + name + "/blobs/" + missingDigest(), headers, null, null,
        unknown("BLOB_UNKNOWN", "NAME_UNKNOWN"));
  }

  private Case missingTagList() {
    boolean existing = rnd.nextInt(3) == 0;
    String query = switch (rnd.nextInt(4)) {
      case 0 -> "";
      case 1 -> "?n=" + pick("0", "1", "10000", "10001", "999999999", "000000001", "65536");
      case 2 -> "?last=" + validTag();
      default -> "?n=" + rnd.nextInt(1_000_000_000) + "&last=" + validTag();
    };
    String target = "/v2/" + (existing ? image.repo() : validName()) + "/tags/list" + query;
    return new Case("tag list", "GET", target, someHeaders(), null, null,
        existing ? anyAnswer() : unknown("NAME_UNKNOWN"));
  }

  private Case missingReferrers() {
    String query = rnd.nextBoolean() ? "" : "?artifactType=" + pick("application%2Fvnd.example%2Bjson",
        "application/vnd." + MARKER, "not%20a%20type", "%2e%2e%2f%2e%2e");
    return new Case("referrers", "GET", "/v2/" + validName() + "/referrers/" + missingDigest() + query,
        someHeaders(), null, null, (c, r) -> r.status() == 404 || r.status() == 200 ? null : "status " + r.status());
  }

  private Case rangeOnContent() {
    String digest = pick(image.blobs().keySet().toArray(String[]::new));
    byte[] bytes = image.blobs().get(digest);
    int size = bytes.length;
    List<String[]> headers = new ArrayList<>(someHeaders());
    switch (rnd.nextInt(10)) {
      case 0 -> {
        int a = rnd.nextInt(size);
        headers.add(new String[] {"Range", "bytes=" + a + "-" + (a + rnd.nextInt(size))});
      }
      case 1 -> headers.add(new String[] {"Range", "bytes=-" + (1 + rnd.nextInt(2 * size))});
      case 2 -> headers.add(new String[] {"Range", "bytes=" + rnd.nextInt(size) + "-"});
      case 3 -> {
        int a = rnd.nextInt(size / 2);
        headers.add(new String[] {"Range", "bytes=" + a + "-" + (a + 100) + "," + (a + 50) + "-" + (a + 150)});
      }
      case 4 -> {
        StringBuilder b = new StringBuilder("bytes=");
        int n = 2 + rnd.nextInt(400);
        for (int i = 0; i < n; i++) {
          int from = rnd.nextInt(size);
          b.append(i == 0 ? "" : ",").append(from).append('-').append(from + rnd.nextInt(10));
        }
        headers.add(new String[] {"Range", b.toString()});
      }
      case 5 -> headers.add(new String[] {"Range", "bytes=" + (size + rnd.nextInt(1_000_000)) + "-"});
      case 6 -> headers.add(new String[] {"Range", pick("items=0-5", "bytes 0-5", "pages=1", "bytes=0-5;x")});
      case 7 -> {
        headers.add(new String[] {"Range", "bytes=0-9"});
        headers.add(new String[] {"Range", pick("bytes=5-1", "bytes=abc", "bytes=10-19")});
      }
      case 8 -> headers.add(new String[] {"Range", "bytes=0-0"});
      default -> headers.add(new String[] {"If-None-Match", pick("*", "\"" + digest + "\"", "W/\"x\"",
          "\"" + MARKER + "\", \"" + digest + "\"")});
    }
    return new Case("range on content", getOrHead(), "/v2/" + image.repo() + "/blobs/" + digest, headers, null,
        null, content(bytes));
  }

  private Case manifestWithHostileHeaders() {
    List<String[]> headers = new ArrayList<>(someHeaders());
    switch (rnd.nextInt(6)) {
      case 0 -> {
        StringBuilder accept = new StringBuilder();
        int n = 50 + rnd.nextInt(100);
        for (int i = 0; i < n; i++) {
          accept.append(i == 0 ? "" : ", ").append("application/vnd.example.").append(word()).append("+json");
        }
        headers.add(new String[] {"Accept", accept + ", " + image.mediaType()});
      }
      case 1 -> headers.add(new String[] {"Accept", pick("*/*;q=abc", "text/html", "*/*;q=0", ";;;,,,",
          "application/json;q=0.5, */*;q=0", "application/vnd.docker.distribution.manifest.v1+json")});
      case 2 -> {
        for (int i = 0; i < 40; i++) {
          headers.add(new String[] {"Accept", pick(ImageSeeder.DOCKER_MANIFEST, ImageSeeder.OCI_MANIFEST,
              ImageSeeder.OCI_INDEX, "*/*")});
        }
      }
      case 3 -> headers.add(new String[] {"If-None-Match", pick("*", "\"" + image.manifestDigest() + "\"",
          "\"" + MARKER + "\"")});
      case 4 -> headers.add(new String[] {"Authorization", pick("Bearer ../../" + MARKER, "Basic %%%",
          "Bearer " + "x".repeat(5_000))});
      default -> headers.add(new String[] {"Range", "bytes=0-10"});
    }
    String ref = rnd.nextBoolean() ? image.tag() : image.manifestDigest();
    Expectation manifest = content(image.manifest());
    return new Case("manifest with hostile headers", getOrHead(), "/v2/" + image.repo() + "/manifests/" + ref,
        headers, null, null, (c, r) -> r.status() == 200 || r.status() >= 400 || r.status() == 304
            ? manifest.violation(c, r) : "status " + r.status());
  }

  private Case junkQuery() {
    String query = pick("foo=%ZZ", "x=1&x=2", "=", "&&&", "ns=local", "n=5", "a=" + "b".repeat(3_000),
        MARKER + "=%", "last=" + MARKER, "%=%", "?" + MARKER, "ns=local&ns=" + MARKER);
    String target = "/v2/" + validName() + "/" + pick("manifests/" + validTag(), "blobs/" + missingDigest());
    // Unknown parameters may be ignored or refused, so long as it is done cleanly.
    Expectation missing = unknown("MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN");
    return new Case("junk query", getOrHead(), target + "?" + query, someHeaders(), null, null,
        (c, r) -> r.status() == 400 ? null : missing.violation(c, r));
  }

  private Case manyHeaders() {
    List<String[]> headers = new ArrayList<>();
    switch (rnd.nextInt(5)) {
      case 0 -> {
        for (int i = 0; i < 100; i++) {
          headers.add(new String[] {"X-" + MARKER + "-" + i, word()});
        }
      }
      case 1 -> headers.add(new String[] {"User-Agent", MARKER + "/" + "x".repeat(6_000)});
      case 2 -> {
        for (int i = 0; i < 30; i++) {
          headers.add(new String[] {"X-" + MARKER, "dup-" + i});
        }
      }
      case 3 -> headers.add(new String[] {"Host", "evil.example"});
      default -> headers.add(new String[] {"Cookie", MARKER + "=" + "../".repeat(500)});
    }
    String target = "/v2/" + validName() + "/" + pick("manifests/" + validTag(), "blobs/" + missingDigest());
    return new Case("many or large headers", getOrHead(), target, headers, null, null,
        unknown("MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN"));
  }

  private Case absoluteForm() {
    String path = "/v2/" + validName() + "/manifests/" + validTag();
    String wire = "GET " + pick("http://evil.example", "http://127.0.0.1:1", "https://" + MARKER + ".example")
        + path + " HTTP/1.1\r\nHost: mirror.test\r\nConnection: close\r\n\r\n";
    return new Case("absolute-form target", "GET", path, List.of(), null, wire.getBytes(ISO_8859_1),
        unknown("MANIFEST_UNKNOWN", "NAME_UNKNOWN"));
  }
}
