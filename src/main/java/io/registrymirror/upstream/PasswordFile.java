package io.registrymirror.upstream;

import io.registrymirror.config.Credentials;
import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.log.EventLog;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * An upstream's {@code passwordFile}, read again every {@code passwordFileCheck} so that a
 * rotated secret takes effect without a restart. The content is compared, not the file's
 * modification time or an inotify event: Kubernetes updates a mounted Secret by swapping a
 * symlink to a new directory, which neither touches nor replaces the file the path names.
 *
 * <p>A file that cannot be read, is empty or is too large keeps the password in use; the reason
 * is logged once, never the password.
 */
final class PasswordFile {

  private static final EventLog LOG = EventLog.of(PasswordFile.class);
  /** A password, a token or a key: far less than this; a larger file is a mistake. */
  private static final long MAX_SIZE = 64 * 1024;

  private final Vertx vertx;
  private final String upstream;
  private final Path path;
  private final Consumer<String> onChange;
  private final long timer;
  // Touched only by the timer's callbacks, which run one after another on one event loop.
  private String current;
  private String problem;
  private boolean checking;

  PasswordFile(Vertx vertx, UpstreamConfig config, Consumer<String> onChange) {
    this.vertx = vertx;
    this.upstream = config.name();
    this.path = config.passwordFile();
    this.onChange = onChange;
    this.current = config.credentials().password();
    long every = config.passwordFileCheck().toMillis();
    this.timer = vertx.setPeriodic(every, every, id -> check());
  }

  void stop() {
    vertx.cancelTimer(timer);
  }

  private void check() {
    if (checking) {
      return;
    }
    checking = true;
    // Vert.x runs file system calls on worker threads: the event loop never waits for a disk.
    vertx.fileSystem().props(path.toString())
        .compose(props -> props.size() > MAX_SIZE
            ? Future.failedFuture("it is larger than " + MAX_SIZE + " bytes")
            : vertx.fileSystem().readFile(path.toString()))
        .map(bytes -> Credentials.passwordOf(bytes.toString(StandardCharsets.UTF_8)))
        .onComplete(read -> {
          checking = false;
          if (read.failed()) {
            keep(reason(read.cause()));
          } else if (read.result().isEmpty()) {
            keep("it is empty");
          } else if (!read.result().equals(current)) {
            current = read.result();
            problem = null;
            onChange.accept(current);
            LOG.info("upstream.password.changed", "upstream", upstream, "file", path);
          } else if (problem != null) {
            problem = null;
            LOG.info("upstream.password.readable", "upstream", upstream, "file", path);
          }
        });
  }

  /** Vert.x wraps the file system's exception; its cause says what is wrong. */
  private static String reason(Throwable failure) {
    Throwable root = failure;
    while (root.getCause() != null) {
      root = root.getCause();
    }
    if (root instanceof NoSuchFileException) {
      return "it does not exist";
    }
    if (root instanceof AccessDeniedException) {
      return "it may not be read";
    }
    return root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
  }

  private void keep(String why) {
    if (!why.equals(problem)) {
      problem = why;
      LOG.warn("upstream.password.unchanged", "upstream", upstream, "file", path,
          "reason", "cannot use the file, keeping the password in use: " + why);
    }
  }
}
