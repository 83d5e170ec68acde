package io.registrymirror.it.abuse;

import static io.registrymirror.it.abuse.AbuseRules.MARKER;
import static io.registrymirror.it.abuse.AbuseRules.isValidName;

import io.registrymirror.testing.ImageSeeder.Image;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Hostile requests, generated deterministically from a random source: the building blocks both
 * kinds of request are made of.
 */
abstract class RequestGenerator {

  static final String HEX = "0123456789abcdef";
  static final String[] SEPARATORS = {".", "_", "__", "-", "--"};

  protected final SplittableRandom rnd;
  /** Its paths are the targets of hostile ranges, headers and methods. */
  protected final Image image;

  RequestGenerator(SplittableRandom rnd, Image image) {
    this.rnd = rnd;
    this.image = image;
  }

  /** {@code count} requests, the kinds taken in turn. */
  protected List<Case> roundRobin(List<Supplier<Case>> kinds, int count) {
    List<Case> cases = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      cases.add(kinds.get(i % kinds.size()).get());
    }
    return cases;
  }

  /** A valid repository name, often carrying the marker. */
  protected String validName() {
    String name;
    do {
      int components = 1 + rnd.nextInt(3);
      StringBuilder b = new StringBuilder();
      int markerAt = rnd.nextBoolean() ? rnd.nextInt(components) : -1;
      for (int i = 0; i < components; i++) {
        b.append(i == 0 ? "" : "/").append(i == markerAt ? MARKER + rnd.nextInt(1000) : word());
        if (rnd.nextInt(4) == 0) {
          b.append(pick(SEPARATORS)).append(word());
        }
      }
      name = b.toString();
    } while (!isValidName(name) || name.startsWith("local/"));
    return name;
  }

  protected String word() {
    StringBuilder b = new StringBuilder();
    int n = 1 + rnd.nextInt(10);
    for (int i = 0; i < n; i++) {
      b.append("abcdefghijklmnopqrstuvwxyz0123456789".charAt(rnd.nextInt(36)));
    }
    return b.toString();
  }

  protected String validTag() {
    String tag = pick("v", "latest-", "_", "1.", "X") + word() + (rnd.nextBoolean() ? "." + word() : "");
    return rnd.nextBoolean() ? tag : MARKER + "-" + tag;
  }

  protected String missingDigest() {
    return rnd.nextInt(5) == 0 ? "sha512:" + hex(128) : "sha256:" + hex(64);
  }

  protected String hex(int n) {
    StringBuilder b = new StringBuilder(n);
    for (int i = 0; i < n; i++) {
      b.append(HEX.charAt(rnd.nextInt(16)));
    }
    return b.toString();
  }

  /** A valid endpoint and reference after a name. */
  protected String endpoint() {
    return switch (rnd.nextInt(4)) {
      case 0 -> "manifests/" + (rnd.nextBoolean() ? validTag() : missingDigest());
      case 1 -> "blobs/" + missingDigest();
      case 2 -> "tags/list";
      default -> "referrers/" + missingDigest();
    };
  }

  protected String getOrHead() {
    return rnd.nextBoolean() ? "GET" : "HEAD";
  }

  /** Headers a hostile client might add to anything; harmless ones, mostly. */
  protected List<String[]> someHeaders() {
    return switch (rnd.nextInt(6)) {
      case 0 -> List.<String[]>of(new String[] {"X-" + MARKER, "../../../../tmp/" + MARKER});
      case 1 -> List.<String[]>of(new String[] {"Accept", "*/*"}, new String[] {"Accept", "*/*"});
      case 2 -> List.<String[]>of(new String[] {"User-Agent", MARKER + "/1.0 (%2e%2e)"});
      default -> List.of();
    };
  }

  @SafeVarargs
  protected final <T> T pick(T... options) {
    return options[rnd.nextInt(options.length)];
  }
}
