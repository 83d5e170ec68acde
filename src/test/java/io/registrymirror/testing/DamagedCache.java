package io.registrymirror.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * A cache directory written straight to disk with sound content and every kind of damage a
 * scrub must repair, and what it must leave: for a scrub's test to compare with what is left.
 *
 * <p>Damaged (to be removed): a blob with one byte flipped, a truncated blob, files under
 * {@code blobs/} that are no digest's path (a wrong name, a wrong shard, a file at the top), a
 * manifest that does not hash to its name with its media type, a manifest without its media type,
 * and a file under {@code manifest-types/} that is no digest's path. Sound (to be kept): a blob, a
 * manifest with its type, a manifest of the earlier one-file format (type line, then body), a
 * media type whose manifest is not (yet) stored, and anything under {@code tmp/} and {@code tags/}.
 */
public final class DamagedCache {

  private static final String TYPE = "application/vnd.oci.image.manifest.v1+json";

  private final Path root;
  private final List<Path> kept = new ArrayList<>();
  private final List<Path> damaged = new ArrayList<>();
  private final List<String> damagedBlobs = new ArrayList<>();
  private final Random random = new Random(13);
  private String goodBlob;

  private DamagedCache(Path root) {
    this.root = root;
  }

  public static DamagedCache create(Path root) throws IOException {
    DamagedCache cache = new DamagedCache(root);
    cache.write();
    return cache;
  }

  private void write() throws IOException {
    byte[] good = bytes(200_000);
    goodBlob = ImageSeeder.sha256(good);
    kept.add(content("blobs", goodBlob, good));

    byte[] flipped = bytes(200_000);
    String flippedDigest = ImageSeeder.sha256(flipped);
    flipped[100_000] ^= 0x01;
    damaged.add(content("blobs", flippedDigest, flipped));
    damagedBlobs.add(flippedDigest);

    byte[] whole = bytes(200_000);
    String truncatedDigest = ImageSeeder.sha256(whole);
    damaged.add(content("blobs", truncatedDigest, Arrays.copyOf(whole, 150_000)));
    damagedBlobs.add(truncatedDigest);

    damaged.add(file("blobs/sha256/ab/not-a-digest", bytes(1_000)));
    byte[] misplaced = bytes(5_000);
    String hex = hex(ImageSeeder.sha256(misplaced));
    damaged.add(file("blobs/sha256/" + (hex.startsWith("00") ? "ff" : "00") + "/" + hex, misplaced));
    damaged.add(file("blobs/notes.txt", "left by hand\n".getBytes(StandardCharsets.UTF_8)));

    byte[] manifest = manifest("good");
    String manifestDigest = ImageSeeder.sha256(manifest);
    kept.add(content("manifests", manifestDigest, manifest));
    kept.add(content("manifest-types", manifestDigest, (TYPE + "\n").getBytes(StandardCharsets.UTF_8)));

    byte[] edited = manifest("edited");
    String editedDigest = ImageSeeder.sha256(edited);
    edited[edited.length - 2] = ' ';
    damaged.add(content("manifests", editedDigest, edited));
    damaged.add(content("manifest-types", editedDigest, (TYPE + "\n").getBytes(StandardCharsets.UTF_8)));

    byte[] untyped = manifest("untyped");
    damaged.add(content("manifests", ImageSeeder.sha256(untyped), untyped));

    byte[] earlier = manifest("earlier format");
    byte[] oneFile = concat((TYPE + "\n").getBytes(StandardCharsets.UTF_8), earlier);
    kept.add(content("manifests", ImageSeeder.sha256(earlier), oneFile));

    kept.add(content("manifest-types", ImageSeeder.sha256(manifest("not stored yet")),
        (TYPE + "\n").getBytes(StandardCharsets.UTF_8)));
    damaged.add(file("manifest-types/sha256/zz/junk", bytes(10)));

    kept.add(file("tmp/" + hex(goodBlob).substring(0, 12) + "-1.part", bytes(70_000)));
    kept.add(file("tags/local/team/app/_tags/1.0", "{}".getBytes(StandardCharsets.UTF_8)));
  }

  public Path root() {
    return root;
  }

  /** Files a scrub must leave as they are. */
  public List<Path> kept() {
    return kept;
  }

  /** Files a scrub must remove. */
  public List<Path> damaged() {
    return damaged;
  }

  /** The digests of the damaged blobs (their files are among {@link #damaged()}). */
  public List<String> damagedBlobs() {
    return damagedBlobs;
  }

  /** The one sound blob's digest. */
  public String goodBlob() {
    return goodBlob;
  }

  /** Files a scrub looks at: all under {@code blobs/}, {@code manifests/}, {@code manifest-types/}. */
  public long checkedFiles() {
    return checked().size();
  }

  public long checkedBytes() throws IOException {
    long total = 0;
    for (Path p : checked()) {
      total += Files.size(p);
    }
    return total;
  }

  public long damagedBytes() throws IOException {
    long total = 0;
    for (Path p : damaged) {
      total += Files.size(p);
    }
    return total;
  }

  /** Where a file is, relative to the cache directory, as the scrub names it. */
  public String relative(Path file) {
    return root.relativize(file).toString();
  }

  private List<Path> checked() {
    List<Path> all = new ArrayList<>(kept);
    all.addAll(damaged);
    return all.stream().filter(p -> !p.startsWith(root.resolve("tmp")) && !p.startsWith(root.resolve("tags")))
        .toList();
  }

  private Path content(String area, String digest, byte[] data) throws IOException {
    String hex = hex(digest);
    return file(area + "/sha256/" + hex.substring(0, 2) + "/" + hex, data);
  }

  private Path file(String relative, byte[] data) throws IOException {
    Path p = root.resolve(relative);
    Files.createDirectories(p.getParent());
    Files.write(p, data);
    return p;
  }

  private byte[] bytes(int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  private static byte[] manifest(String note) {
    return ("{\"schemaVersion\":2,\"mediaType\":\"" + TYPE + "\",\"annotations\":{\"note\":\"" + note + "\"}}")
        .getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] all = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }

  private static String hex(String digest) {
    return digest.substring(digest.indexOf(':') + 1);
  }
}
