package io.registrymirror.it.abuse;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Valid requests for things upstream lacks, and valid requests with hostile headers, queries and
 * targets. Every answer is a clean one, and what goes upstream goes only as valid requests
 * carrying nothing of the client's.
 */
class AbuseHostileRequestsTest extends AbuseTestBase {

  static final int REQUESTS = 4_500;

  @Test
  void hostileButValidRequestsGoUpstreamOnlyAsValidRequests(@TempDir Path work) throws Exception {
    underStrace(work, "valid but missing or hostile requests", s -> {
      List<Case> missing = new HostileRequests(new SplittableRandom(SEED), image).generate(REQUESTS);
      s.softly().assertThat(missing).hasSize(REQUESTS);

      Answers.check(s.softly(), s.figures(), "valid but missing", missing, s.client().sendAll(missing));
      s.softly().assertThat(s.upstream().seen().stream().map(AbuseRules::invalidUpstreamRequest)
              .filter(problem -> problem != null).limit(20).toList())
          .as("invalid requests sent upstream")
          .isEmpty();
    });
  }
}
