package io.registrymirror.it.abuse;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.assertj.core.api.SoftAssertions;

/**
 * The invariants every answer keeps (never a 5xx, the OCI error JSON on a refusal, no body on a
 * HEAD), then each case's own expectation; violations are collected per kind of request.
 */
final class Answers {

  private Answers() {
  }

  static void check(SoftAssertions softly, AbuseFigures figures, String phase, List<Case> cases,
      List<Reply> replies) {
    Map<String, List<String>> failures = new TreeMap<>();
    Map<String, Integer> perCategory = new TreeMap<>();
    for (int i = 0; i < cases.size(); i++) {
      Case c = cases.get(i);
      perCategory.merge(c.category(), 1, Integer::sum);
      figures.tried.merge(c.category(), 1, Integer::sum);
      figures.serverErrors += replies.get(i).status() >= 500 ? 1 : 0;
      String problem = violation(c, replies.get(i));
      if (problem != null) {
        failures.computeIfAbsent(c.category(), k -> new ArrayList<>())
            .add(problem + "\n      request: " + Reply.excerpt(c.wire()) + "\n      answer:  " + replies.get(i));
      }
    }
    System.out.println(phase + ": " + cases.size() + " requests " + perCategory);
    failures.forEach((category, list) -> softly.fail("%s, %s: %d of %d requests failed, e.g.%n    %s",
        phase, category, list.size(), perCategory.get(category),
        String.join("\n    ", list.subList(0, Math.min(3, list.size())))));
  }

  /** The invariants every answer must keep, then the case's own expectation; null when all hold. */
  private static String violation(Case c, Reply r) {
    if (r.failure() != null) {
      return c.expect().allowsNoAnswer() ? null : "no complete answer: " + r.failure();
    }
    if (r.status() >= 500) {
      return "server error " + r.status();
    }
    boolean head = c.method().equals("HEAD");
    if (head && r.body().length > 0) {
      return "HEAD answered with a body of " + r.body().length + " bytes";
    }
    if (r.status() >= 400) {
      // Every refusal carries the OCI error JSON, those of requests that are not valid HTTP too.
      String error = errorShape(r, head);
      if (error != null) {
        return error;
      }
    }
    return c.expect().violation(c, r);
  }

  /** A 4xx must be the OCI error JSON with a known code (its headers only, for a HEAD). */
  private static String errorShape(Reply r, boolean head) {
    String type = r.header("content-type");
    if (type == null || !type.split(";")[0].trim().equalsIgnoreCase("application/json")) {
      return "error body is not application/json but " + type;
    }
    if (head && r.body().length == 0) {
      return null;
    }
    try {
      JsonArray errors = new JsonObject(new String(r.body(), UTF_8))
          .getJsonArray("errors");
      if (errors == null || errors.isEmpty()) {
        return "error JSON without errors";
      }
      for (int i = 0; i < errors.size(); i++) {
        JsonObject e = errors.getJsonObject(i);
        if (!AbuseRules.KNOWN_CODES.contains(e.getString("code")) || e.getString("message") == null) {
          return "error JSON with an unknown code or no message";
        }
      }
      return null;
    } catch (RuntimeException e) {
      return "error body is not the OCI error JSON: " + e.getMessage();
    }
  }
}
