package io.registrymirror.store;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;

/**
 * Manifests by digest: kept for good on disk, the recently used ones also in memory so that the
 * hot path (clients re-resolving the same images) never touches the disk.
 *
 * <p>On disk a manifest is one file, its media type on the first line and the exact bytes after
 * it, so that type and body can never disagree after a crash. A file that does not hash to its
 * name is treated as absent.
 */
public final class ManifestStore {

  /** Thousands of typical manifests; kept small because it lives on the heap. */
  private static final long MEMORY_BYTES = 16L * 1024 * 1024;

  private final Vertx vertx;
  private final CacheLayout layout;
  private final Cache<Digest, Manifest> memory = Caffeine.newBuilder()
      .maximumWeight(MEMORY_BYTES)
      .weigher((Digest d, Manifest m) -> m.body().length + 256)
      .build();

  public ManifestStore(Vertx vertx, CacheLayout layout) {
    this.vertx = vertx;
    this.layout = layout;
  }

  public Future<Void> open() {
    return vertx.executeBlocking(() -> {
      Files.createDirectories(layout.manifests());
      return null;
    });
  }

  /** The in-memory copy only: answers without any I/O, or null. */
  public Manifest cached(Digest digest) {
    return memory.getIfPresent(digest);
  }

  public Future<Optional<Manifest>> get(Digest digest) {
    Manifest hot = memory.getIfPresent(digest);
    if (hot != null) {
      return Future.succeededFuture(Optional.of(hot));
    }
    Path file = layout.manifest(digest);
    return vertx.executeBlocking(() -> {
      byte[] raw;
      try {
        raw = Files.readAllBytes(file);
      } catch (NoSuchFileException e) {
        return Optional.<Manifest>empty();
      }
      int newline = indexOf(raw, (byte) '\n');
      if (newline < 0) {
        return Optional.<Manifest>empty();
      }
      byte[] body = Arrays.copyOfRange(raw, newline + 1, raw.length);
      if (!digest.matches(body)) {
        return Optional.<Manifest>empty();
      }
      String type = new String(raw, 0, newline, StandardCharsets.UTF_8);
      Manifest m = new Manifest(digest, type, body);
      memory.put(digest, m);
      return Optional.of(m);
    }, false);
  }

  /** Stores a manifest whose body the caller has verified against its digest. */
  public Future<Void> put(Manifest m) {
    memory.put(m.digest(), m);
    Path target = layout.manifest(m.digest());
    return vertx.executeBlocking(() -> {
      if (Files.exists(target)) {
        return null;
      }
      byte[] head = (m.mediaType() + "\n").getBytes(StandardCharsets.UTF_8);
      byte[] all = Arrays.copyOf(head, head.length + m.body().length);
      System.arraycopy(m.body(), 0, all, head.length, m.body().length);
      AtomicFiles.write(layout, target, all);
      return null;
    }, false);
  }

  private static int indexOf(byte[] a, byte b) {
    for (int i = 0; i < a.length; i++) {
      if (a[i] == b) {
        return i;
      }
    }
    return -1;
  }
}
