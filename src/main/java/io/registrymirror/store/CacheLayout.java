package io.registrymirror.store;

import io.registrymirror.oci.Digest;
import io.registrymirror.oci.RepositoryName;
import java.nio.file.Path;

/**
 * Where everything lives under the cache directory.
 *
 * <pre>
 * &lt;cache.dir&gt;/
 *   blobs/&lt;alg&gt;/&lt;2 hex&gt;/&lt;hex&gt;               verified blob bytes
 *   manifests/&lt;alg&gt;/&lt;2 hex&gt;/&lt;hex&gt;           verified manifest bytes
 *   manifest-types/&lt;alg&gt;/&lt;2 hex&gt;/&lt;hex&gt;      the manifest's media type, one line
 *   tags/&lt;upstream&gt;/&lt;name&gt;/_tags/&lt;tag&gt;    JSON: the tag's current resolution
 *   tmp/                                   files being written; emptied at start-up
 * </pre>
 *
 * Everything outside {@code tmp/} appears only by an atomic rename of a complete, verified file,
 * so a crash at any moment leaves either the old state or the new one. {@code _tags} cannot
 * collide with a repository path component, which never starts with {@code _}.
 */
public final class CacheLayout {

  private final Path root;

  public CacheLayout(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  public Path root() {
    return root;
  }

  public Path blobs() {
    return root.resolve("blobs");
  }

  public Path manifests() {
    return root.resolve("manifests");
  }

  /** Media types beside, not inside, {@link #manifests()}: every file there hashes to its name. */
  public Path manifestTypes() {
    return root.resolve("manifest-types");
  }

  public Path tags() {
    return root.resolve("tags");
  }

  public Path tmp() {
    return root.resolve("tmp");
  }

  public Path blob(Digest digest) {
    return contentPath(blobs(), digest);
  }

  public Path manifest(Digest digest) {
    return contentPath(manifests(), digest);
  }

  public Path manifestType(Digest digest) {
    return contentPath(manifestTypes(), digest);
  }

  public Path tag(String upstream, RepositoryName name, String tag) {
    return inside(tags().resolve(upstream).resolve(name.value()).resolve("_tags").resolve(tag));
  }

  private Path contentPath(Path base, Digest digest) {
    String hex = digest.hex();
    return inside(base.resolve(digest.algorithm().id()).resolve(hex.substring(0, 2)).resolve(hex));
  }

  /**
   * The grammars already exclude anything that could climb out of the cache; this check makes
   * that a property of the layout rather than of every caller.
   */
  private Path inside(Path p) {
    Path normal = p.normalize();
    if (!normal.startsWith(root) || normal.equals(root)) {
      throw new IllegalArgumentException("path escapes the cache directory");
    }
    return normal;
  }
}
