package io.registrymirror.config;

import java.net.URI;
import java.time.Duration;
import java.util.List;

/**
 * How tags are tracked.
 *
 * @param refreshInterval how often the refresher looks for tags about to go stale; zero turns
 *     it off
 * @param refreshConcurrency how many revalidations it runs at once, over all upstreams
 * @param forgetAfter tags nobody pulled for this long are no longer refreshed
 * @param history how many moves are kept per tag
 * @param webhooks URLs that get a JSON POST for every move
 * @param rules TTL and pinning for tags matching patterns, tried in order
 * @param maxTracked how many tags are tracked at most; the least recently pulled go first
 */
public record TagsConfig(Duration refreshInterval, int refreshConcurrency, Duration forgetAfter,
    int history, List<URI> webhooks, List<TagRule> rules, int maxTracked) {

  public TagsConfig {
    webhooks = List.copyOf(webhooks);
    rules = List.copyOf(rules);
  }

  public static TagsConfig defaults() {
    return new TagsConfig(Duration.ofSeconds(30), 4, Duration.ofDays(7), 10, List.of(), List.of(),
        20_000);
  }

  /** The TTL for a tag: the first matching rule's, else the upstream's. */
  public Duration ttl(UpstreamConfig upstream, String repository, String tag) {
    for (TagRule rule : rules) {
      if (rule.ttl() != null && rule.matches(repository, tag)) {
        return rule.ttl();
      }
    }
    return upstream.tagTtl();
  }

  /** The platforms to warm when the tag moves: the first matching rule's that has some. */
  public List<String> warm(String repository, String tag) {
    for (TagRule rule : rules) {
      if (!rule.warm().isEmpty() && rule.matches(repository, tag)) {
        return rule.warm();
      }
    }
    return List.of();
  }

  /** The first matching rule that pins the tag, or null. */
  public TagRule pin(String repository, String tag) {
    for (TagRule rule : rules) {
      if (rule.pin() && rule.matches(repository, tag)) {
        return rule;
      }
    }
    return null;
  }
}
