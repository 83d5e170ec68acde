package io.registrymirror.config;

import static io.registrymirror.config.ConfigValues.checkKeys;
import static io.registrymirror.config.ConfigValues.count;
import static io.registrymirror.config.ConfigValues.duration;
import static io.registrymirror.config.ConfigValues.httpUrl;
import static io.registrymirror.config.ConfigValues.list;
import static io.registrymirror.config.ConfigValues.requireObject;
import static io.registrymirror.config.ConfigValues.text;

import com.fasterxml.jackson.databind.JsonNode;
import io.registrymirror.oci.Digest;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/** The {@code tags} section of the configuration: refreshing, history, webhooks and per-tag rules. */
final class TagsSection {

  private static final Pattern PLATFORM = Pattern.compile("[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?");

  private TagsSection() {}

  static TagsConfig parse(JsonNode node) {
    TagsConfig d = TagsConfig.defaults();
    List<URI> webhooks = list(node, "tags.webhooks", "URLs", (key, item) -> httpUrl(key, text(item, key)));
    List<TagRule> rules = list(node, "tags.rules", "rules", TagsSection::rule);
    return new TagsConfig(
        duration(node, "tags", "refreshInterval", d.refreshInterval()),
        count(node, "tags", "refreshConcurrency", d.refreshConcurrency(), 1),
        duration(node, "tags", "forgetAfter", d.forgetAfter()),
        count(node, "tags", "history", d.history(), 1),
        webhooks, rules,
        count(node, "tags", "maxTracked", d.maxTracked(), 1));
  }

  private static TagRule rule(String key, JsonNode node) {
    requireObject(node, key);
    checkKeys(node, key + ".", Set.of("repositories", "tags", "ttl", "pin", "warm"));
    String repositories = node.has("repositories") ? text(node.get("repositories"), key + ".repositories") : "*";
    String tags = node.has("tags") ? text(node.get("tags"), key + ".tags") : "*";
    Duration ttl = node.has("ttl") ? duration(node, key, "ttl", null) : null;
    boolean pin = false;
    Digest digest = null;
    if (node.has("pin")) {
      JsonNode p = node.get("pin");
      if (p.isBoolean()) {
        pin = p.booleanValue();
      } else {
        digest = Digest.parseOrNull(text(p, key + ".pin"));
        if (digest == null) {
          throw new ConfigException(key + ".pin", "must be true, false or a digest like sha256:<64 hex>");
        }
        pin = true;
      }
    }
    List<String> warm = list(node, key + ".warm", "platforms like linux/amd64", (k, item) -> {
      String platform = text(item, k);
      if (!PLATFORM.matcher(platform).matches()) {
        throw new ConfigException(k, "not a platform like linux/amd64 or linux/arm64/v8: '" + platform + "'");
      }
      return platform;
    });
    if (ttl == null && !pin && warm.isEmpty()) {
      throw new ConfigException(key, "sets none of ttl, pin and warm");
    }
    return new TagRule(repositories, tags, ttl, pin, digest, warm);
  }
}
