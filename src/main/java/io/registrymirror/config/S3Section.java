package io.registrymirror.config;

import static io.registrymirror.config.ConfigValues.httpUrl;
import static io.registrymirror.config.ConfigValues.text;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;

/** Reads the {@code s3} section into an {@link S3Config}. */
final class S3Section {

  static final String[] KEYS = {"endpoint", "bucket", "region", "pathStyle"};

  private S3Section() {}

  static S3Config parse(JsonNode node) {
    if (!node.has("bucket")) {
      throw new ConfigException("s3.bucket", "missing: the bucket blobs and manifests are written to");
    }
    return new S3Config(
        node.has("endpoint") ? endpoint("s3.endpoint", text(node.get("endpoint"), "s3.endpoint")) : null,
        bucket("s3.bucket", text(node.get("bucket"), "s3.bucket")),
        node.has("region") ? region("s3.region", text(node.get("region"), "s3.region")) : null,
        node.has("pathStyle") && bool("s3.pathStyle", node.get("pathStyle").asText()));
  }

  static URI endpoint(String key, String value) {
    URI endpoint = httpUrl(key, value);
    if (endpoint.getRawQuery() != null || endpoint.getRawFragment() != null || endpoint.getRawUserInfo() != null) {
      throw new ConfigException(key, "must be a URL without credentials, query or fragment");
    }
    return endpoint;
  }

  /** S3's rules for bucket names: 3 to 63 lower-case letters, digits, dots and hyphens. */
  static String bucket(String key, String value) {
    if (!value.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
      throw new ConfigException(key, "not a bucket name: '" + value + "'");
    }
    return value;
  }

  static String region(String key, String value) {
    if (!value.matches("[a-z0-9-]{1,40}")) {
      throw new ConfigException(key, "not a region: '" + value + "'");
    }
    return value;
  }

  static boolean bool(String key, String value) {
    return switch (value) {
      case "true" -> true;
      case "false" -> false;
      default -> throw new ConfigException(key, "must be true or false");
    };
  }
}
