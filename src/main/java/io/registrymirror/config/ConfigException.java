package io.registrymirror.config;

/** A configuration that cannot be used; the message names the key and what is wrong with it. */
public final class ConfigException extends RuntimeException {

  public ConfigException(String key, String problem) {
    super(key + ": " + problem);
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }
}
