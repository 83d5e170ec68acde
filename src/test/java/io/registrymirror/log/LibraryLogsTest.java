package io.registrymirror.log;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;
import io.registrymirror.testing.LogCapture;
import io.vertx.core.internal.logging.LoggerFactory;
import org.junit.jupiter.api.Test;

/**
 * The libraries' lines take the mirror's way out, in its format: Vert.x's, Netty's and those
 * written through {@link System.Logger} (the JDK's, Caffeine's) all reach Logback.
 */
class LibraryLogsTest {

  @Test
  void vertxNettyAndSystemLoggerLinesReachTheMirrorsLog() {
    try (LogCapture warnings = LogCapture.warnings()) {
      LoggerFactory.getLogger("io.vertx.core.Example").warn("a line from Vert.x");
      InternalLoggerFactory.getInstance("io.netty.channel.Example").warn("a line from Netty");
      System.getLogger("jdk.Example").log(System.Logger.Level.WARNING, "a line from the JDK");
      assertThat(warnings.lines()).anySatisfy(l -> assertThat(l).contains("level=warn logger=Example msg=\"a line from Vert.x\""))
          .anySatisfy(l -> assertThat(l).contains("level=warn logger=Example msg=\"a line from Netty\""))
          .anySatisfy(l -> assertThat(l).contains("level=warn logger=Example msg=\"a line from the JDK\""));
    }
  }

  @Test
  void nettysDebugAndInfoStayOff() {
    InternalLogger netty = InternalLoggerFactory.getInstance("io.netty.channel.DefaultChannelPipeline");
    assertThat(netty.isInfoEnabled()).isFalse();
    assertThat(netty.isWarnEnabled()).isTrue();
  }
}
