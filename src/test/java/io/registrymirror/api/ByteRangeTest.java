package io.registrymirror.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ByteRangeTest {

  @Test
  void parsesTheFormsClientsSend() {
    assertThat(ByteRange.parse(null, 100)).isNull();
    assertThat(ByteRange.parse("bytes=0-9", 100)).isEqualTo(new ByteRange(0, 9));
    assertThat(ByteRange.parse("bytes=90-", 100)).isEqualTo(new ByteRange(90, 99));
    assertThat(ByteRange.parse("bytes=90-1000", 100)).isEqualTo(new ByteRange(90, 99));
    assertThat(ByteRange.parse("bytes=-10", 100)).isEqualTo(new ByteRange(90, 99));
    assertThat(ByteRange.parse("bytes=-1000", 100)).isEqualTo(new ByteRange(0, 99));
    assertThat(ByteRange.parse("Bytes= 5-5", 100)).isEqualTo(new ByteRange(5, 5));
    assertThat(ByteRange.parse("bytes=5-5", 100).contentRange(100)).isEqualTo("bytes 5-5/100");
  }

  @Test
  void severalRangesAreAnsweredWithTheWholeBlob() {
    assertThat(ByteRange.parse("bytes=0-9,20-29", 100)).isNull();
  }

  @Test
  void otherUnitsAreIgnored() {
    assertThat(ByteRange.parse("items=0-1", 100)).isNull();
    ByteRange.validate("items=0-1");
  }

  @Test
  void syntaxIsCheckedBeforeTheSizeIsKnown() {
    ByteRange.validate("bytes=5000-");
    ByteRange.validate("bytes=0-9,20-29");
    assertThatThrownBy(() -> ByteRange.validate("bytes=9-5"))
        .isInstanceOfSatisfying(RegistryException.class, e -> {
          assertThat(e.error()).isEqualTo(OciError.RANGE_INVALID);
          assertThat(e.headers().contains("Content-Range")).isFalse();
        });
  }

  @ParameterizedTest
  @ValueSource(strings = {"bytes=", "bytes=a-b", "bytes=5", "bytes=9-5", "bytes=100-",
      "bytes=-0", "bytes=1-2-3", "bytes=0-9,x", "bytes=0-99999999999999999999", "bytes=+1-2"})
  void rejectsWithRangeInvalid(String header) {
    assertThatThrownBy(() -> ByteRange.parse(header, 100))
        .isInstanceOfSatisfying(RegistryException.class, e -> {
          assertThat(e.error()).isEqualTo(OciError.RANGE_INVALID);
          assertThat(e.headers().get("Content-Range")).isEqualTo("bytes */100");
        });
  }

  @Test
  void nothingSatisfiesARangeOfAnEmptyBlob() {
    assertThatThrownBy(() -> ByteRange.parse("bytes=0-", 0)).isInstanceOf(RegistryException.class);
    assertThatThrownBy(() -> ByteRange.parse("bytes=-5", 0)).isInstanceOf(RegistryException.class);
  }
}
