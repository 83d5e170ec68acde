package io.registrymirror.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.oci.Digest;
import io.registrymirror.testing.DamagedCache;
import io.registrymirror.testing.ImageSeeder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A scrub of a cache on disk: exactly the files that do not match their digest, or are no
 * digest's path, are removed; the damaged blobs are forgotten; the summary counts what was done.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CacheScrubTest {

  @TempDir
  Path dir;

  @Test
  void removesExactlyTheDamagedFilesAndCountsThem() throws IOException {
    DamagedCache cache = DamagedCache.create(dir);
    long checkedBytes = cache.checkedBytes();
    long damagedBytes = cache.damagedBytes();
    Recorder recorder = new Recorder();
    List<ContentKey> forgotten = new ArrayList<>();

    ScrubProgress summary = new CacheScrub(new CacheLayout(dir), forgotten::add, recorder).run();

    for (Path p : cache.kept()) {
      assertThat(p).as("kept").exists();
    }
    for (Path p : cache.damaged()) {
      assertThat(p).as("removed").doesNotExist();
    }
    assertThat(recorder.removed).containsExactlyInAnyOrderElementsOf(cache.damaged());
    assertThat(forgotten).filteredOn(k -> k.kind() == ContentKey.Kind.BLOB)
        .extracting(k -> k.digest().toString()).containsExactlyInAnyOrderElementsOf(cache.damagedBlobs());
    assertThat(summary.filesTotal()).isEqualTo(cache.checkedFiles());
    assertThat(summary.files()).isEqualTo(cache.checkedFiles());
    assertThat(summary.bytesTotal()).isEqualTo(checkedBytes);
    assertThat(summary.bytes()).isEqualTo(checkedBytes);
    assertThat(summary.removed()).isEqualTo(cache.damaged().size());
    assertThat(summary.removedBytes()).isEqualTo(damagedBytes);
    assertThat(summary.failed()).isZero();
    assertThat(recorder.failed).isEmpty();
    assertThat(recorder.last).isEqualTo(summary);

    // What is left is clean: a second scrub finds nothing to do.
    ScrubProgress again = new CacheScrub(new CacheLayout(dir), forgotten::add, new Recorder()).run();
    assertThat(again.removed()).isZero();
    assertThat(again.files()).isEqualTo(cache.kept().size() - 2);
  }

  @Test
  void reportsProgressWhileALargeBlobIsHashed() throws IOException {
    Path blob = blob(new Random(1), 5 * 1024 * 1024, false);
    Recorder recorder = new Recorder();

    new CacheScrub(new CacheLayout(dir), d -> { }, recorder).run();

    assertThat(blob).exists();
    // Every MiB of the file, then once the file is done, then the summary.
    assertThat(recorder.progress).extracting(ScrubProgress::bytes).containsSubsequence(
        1L << 20, 2L << 20, 3L << 20, 4L << 20, 5L << 20, 5L << 20);
    assertThat(recorder.progress).allSatisfy(p -> assertThat(p.bytesTotal()).isEqualTo(5L << 20));
  }

  @Test
  void aFileThatGoesAwayWhileItIsCheckedIsSkipped() throws IOException {
    Random random = new Random(2);
    Path damaged = blob(random, 3 * 1024 * 1024, true);
    Path other = blob(random, 100_000, false);
    List<ContentKey> forgotten = new ArrayList<>();
    Recorder recorder = new Recorder() {
      @Override
      public void progress(ScrubProgress p) {
        super.progress(p);
        // Evicted, or deleted by hand, while the scrub reads it or before it gets to it.
        if (p.bytes() > 0) {
          try {
            Files.deleteIfExists(damaged);
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
        }
      }
    };

    ScrubProgress summary = new CacheScrub(new CacheLayout(dir), forgotten::add, recorder).run();

    assertThat(damaged).doesNotExist();
    assertThat(other).exists();
    assertThat(summary.removed()).isZero();
    assertThat(summary.failed()).isZero();
    assertThat(recorder.failed).isEmpty();
    assertThat(forgotten).isEmpty();
  }

  @Test
  void anEmptyCacheIsClean() throws IOException {
    ScrubProgress summary = new CacheScrub(new CacheLayout(dir), d -> { }, new Recorder()).run();
    assertThat(summary.files()).isZero();
    assertThat(summary.removed()).isZero();
    assertThat(summary.tenths()).isEqualTo(10);
  }

  @Test
  void aMissingOrFileCacheDirectoryIsAnError() throws IOException {
    assertThatThrownBy(() -> new CacheScrub(new CacheLayout(dir.resolve("none")), d -> { }, new Recorder()).run())
        .isInstanceOf(NoSuchFileException.class);
    Path file = Files.writeString(dir.resolve("file"), "x");
    assertThatThrownBy(() -> new CacheScrub(new CacheLayout(file), d -> { }, new Recorder()).run())
        .isInstanceOf(NotDirectoryException.class);
  }

  /** A blob of random bytes under its digest; {@code damaged}: one byte flipped after hashing. */
  private Path blob(Random random, int size, boolean damaged) throws IOException {
    byte[] data = new byte[size];
    random.nextBytes(data);
    Path p = new CacheLayout(dir).blob(Digest.parse(ImageSeeder.sha256(data)));
    if (damaged) {
      data[size / 2] ^= 0x01;
    }
    Files.createDirectories(p.getParent());
    return Files.write(p, data);
  }

  /** Everything a scrub reports. */
  private static class Recorder implements ScrubWatcher {
    final List<ScrubProgress> progress = new ArrayList<>();
    final List<Path> removed = new ArrayList<>();
    final List<Path> failed = new ArrayList<>();
    ScrubProgress last;

    @Override
    public void progress(ScrubProgress p) {
      progress.add(p);
      last = p;
    }

    @Override
    public void removed(String kind, Path file, long size, String reason) {
      removed.add(file);
    }

    @Override
    public void failed(Path file, Exception error) {
      failed.add(file);
    }
  }
}
