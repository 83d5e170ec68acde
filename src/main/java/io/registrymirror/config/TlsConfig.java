package io.registrymirror.config;

import java.nio.file.Path;

/**
 * The listener's certificate and key, as PEM files: Docker and containerd speak https to any
 * registry not marked insecure.
 *
 * @param cert the certificate chain, leaf first
 * @param key its private key (PKCS#8 or PKCS#1)
 */
public record TlsConfig(Path cert, Path key) {}
