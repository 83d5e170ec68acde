package io.registrymirror.oci;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import org.junit.jupiter.api.Test;

class HttpUrlTest {

  @Test
  void onlyAbsoluteHttpUrlsWithAHostInAnyCaseOfTheScheme() {
    assertThat(HttpUrl.isHttp(URI.create("https://registry-1.docker.io/v2/"))).isTrue();
    assertThat(HttpUrl.isHttp(URI.create("HTTP://mirror.example:5000"))).isTrue();
    assertThat(HttpUrl.isHttp(URI.create("ftp://mirror.example/"))).isFalse();
    assertThat(HttpUrl.isHttp(URI.create("file:///etc/passwd"))).isFalse();
    assertThat(HttpUrl.isHttp(URI.create("/v2/library/alpine"))).isFalse();
    assertThat(HttpUrl.isHttp(URI.create("http:opaque"))).isFalse();
  }

  @Test
  void theSameOriginMeansTheSameSchemeHostAndPortWithDefaultsFilledIn() {
    URI upstream = URI.create("https://Registry.example");
    assertThat(HttpUrl.sameOrigin(URI.create("https://registry.example:443/token"), upstream)).isTrue();
    assertThat(HttpUrl.sameOrigin(URI.create("HTTPS://registry.example/token"), upstream)).isTrue();
    assertThat(HttpUrl.sameOrigin(URI.create("http://registry.example:443/token"), upstream)).isFalse();
    assertThat(HttpUrl.sameOrigin(URI.create("https://registry.example:8443/token"), upstream)).isFalse();
    assertThat(HttpUrl.sameOrigin(URI.create("https://auth.registry.example/token"), upstream)).isFalse();
    assertThat(HttpUrl.origin(URI.create("http://registry.example/v2/"))).isEqualTo("http://registry.example:80");
  }
}
