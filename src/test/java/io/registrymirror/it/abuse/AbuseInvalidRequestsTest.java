package io.registrymirror.it.abuse;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invalid requests: names, tags, digests, ranges, methods, pagination, namespaces, query
 * encodings, oversized requests and broken HTTP, each wrong in one respect. Every answer is a
 * clean refusal (never a 5xx, always the OCI error JSON when it has a body, never a body on a
 * HEAD), and nothing about them reaches upstream.
 */
class AbuseInvalidRequestsTest extends AbuseTestBase {

  /** With {@link AbuseHostileRequestsTest#REQUESTS}, over ten thousand requests in all. */
  static final int REQUESTS = 6_000;

  @Test
  void invalidRequestsAreRefusedCleanlyAndNeverReachUpstream(@TempDir Path work) throws Exception {
    underStrace(work, "invalid requests", s -> {
      List<Case> invalid = new InvalidRequests(new SplittableRandom(SEED), image).generate(REQUESTS);
      s.softly().assertThat(invalid.size() + AbuseHostileRequestsTest.REQUESTS).isGreaterThanOrEqualTo(10_000);

      Answers.check(s.softly(), s.figures(), "invalid", invalid, s.client().sendAll(invalid));
      s.softly().assertThat(s.upstream().arrived("GET", ".*") + s.upstream().arrived("HEAD", ".*"))
          .as("upstream requests caused by invalid requests, e.g. %s",
              s.upstream().seen().stream().limit(10).map(seen -> seen.method() + " " + seen.uri()).toList())
          .isZero();
    });
  }
}
