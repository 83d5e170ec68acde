package io.registrymirror.testing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublisher;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.zip.GZIPOutputStream;

/**
 * Pushes blobs, images and indexes into a registry over the OCI push API, so tests have real content to pull.
 *
 * <p>Images are genuine: gzip-compressed ustar layers, a config whose {@code diff_ids} match the uncompressed
 * layers, and a Docker schema2 or OCI manifest. Content is random but reproducible from the seeder's seed.
 */
public final class ImageSeeder {

  public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
  public static final String DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
  public static final String DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
  public static final String DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";
  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
  public static final String OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

  private static final Platform LINUX_AMD64 = Platform.of("linux/amd64");
  private static final int INDEX_CHILD_LAYER_BYTES = 16 * 1024;
  private static final int TAR_BLOCK = 512;

  private final URI registry;
  private final Random random;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** A seeder for the registry at {@code registryUrl} (e.g. {@code http://127.0.0.1:5000}) with a fixed seed. */
  public ImageSeeder(String registryUrl) {
    this(registryUrl, 1);
  }

  public ImageSeeder(String registryUrl, long seed) {
    this.registry = URI.create(registryUrl);
    this.random = new Random(seed);
  }

  /** An image manifest as pushed, with every blob it references (config included) keyed by digest. */
  public record Image(String repo, String tag, String manifestDigest, String mediaType, byte[] manifest,
            String configDigest, List<String> layerDigests, Map<String, byte[]> blobs) {
  }

  /** An image index or manifest list as pushed, with its per-platform images (pushed untagged). */
  public record Index(String repo, String tag, String digest, String mediaType, byte[] body, List<Image> children) {
  }

  /** A target platform; {@code variant} may be null. */
  public record Platform(String os, String architecture, String variant) {

    /** Parses {@code os/architecture[/variant]}, e.g. {@code linux/arm64/v8}. */
    public static Platform of(String spec) {
      String[] parts = spec.split("/");
      return new Platform(parts[0], parts[1], parts.length > 2 ? parts[2] : null);
    }

    JsonObject toJson() {
      JsonObject json = new JsonObject().put("architecture", architecture).put("os", os);
      return variant == null ? json : json.put("variant", variant);
    }
  }

  /** The media types used for one flavour of image. */
  private record Flavour(String manifest, String index, String config, String layer) {

    static Flavour of(String name) {
      return switch (name) {
        case "docker" -> new Flavour(DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_CONFIG, DOCKER_LAYER);
        case "oci" -> new Flavour(OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER);
        default -> throw new IllegalArgumentException("flavour must be \"docker\" or \"oci\": " + name);
      };
    }
  }

  /** Uploads {@code data} as a blob of {@code repo} and returns its digest ({@code sha256:<hex>}). */
  public String pushBlob(String repo, byte[] data) throws IOException, InterruptedException {
    String digest = sha256(data);
    upload(repo, digest, BodyPublishers.ofByteArray(data));
    return digest;
  }

  /** Uploads a file as a blob, streaming it so that blobs of hundreds of MiB never sit in memory. */
  public String pushBlob(String repo, Path file) throws IOException, InterruptedException {
    String digest = sha256(file);
    upload(repo, digest, BodyPublishers.ofFile(file));
    return digest;
  }

  /** Puts a manifest under a tag or digest reference and returns its digest. */
  public String pushManifest(String repo, String reference, String mediaType, byte[] body)
      throws IOException, InterruptedException {
    HttpResponse<String> response = send(HttpRequest.newBuilder(endpoint(repo, "/manifests/" + reference))
        .header("Content-Type", mediaType)
        .PUT(BodyPublishers.ofByteArray(body)), 201);
    String digest = sha256(body);
    String stored = response.headers().firstValue("Docker-Content-Digest").orElse(digest);
    if (!stored.equals(digest)) {
      throw new IllegalStateException("registry stored manifest as " + stored + ", expected " + digest);
    }
    return digest;
  }

  /**
   * Pushes a linux/amd64 image of {@code layers} layers, each holding {@code layerSizeBytes} of random file
   * content, and tags it.
   *
   * @param flavour {@code "docker"} for schema2 media types, {@code "oci"} for OCI ones
   */
  public Image pushImage(String repo, String tag, int layers, int layerSizeBytes, String flavour)
      throws IOException, InterruptedException {
    return pushImage(repo, tag, layers, layerSizeBytes, Flavour.of(flavour), LINUX_AMD64);
  }

  /** Pushes an OCI image index with one single-layer image per platform. */
  public Index pushIndex(String repo, String tag, List<Platform> platforms) throws IOException, InterruptedException {
    return pushIndex(repo, tag, platforms, "oci");
  }

  /**
   * Pushes one single-layer image per platform, untagged, then an index referencing them under {@code tag}.
   *
   * @param flavour {@code "docker"} for a manifest list of schema2 images, {@code "oci"} for an OCI image index
   */
  public Index pushIndex(String repo, String tag, List<Platform> platforms, String flavour)
      throws IOException, InterruptedException {
    Flavour types = Flavour.of(flavour);
    List<Image> children = new ArrayList<>();
    JsonArray manifests = new JsonArray();
    for (Platform platform : platforms) {
      Image child = pushImage(repo, null, 1, INDEX_CHILD_LAYER_BYTES, types, platform);
      children.add(child);
      manifests.add(descriptor(child.mediaType(), child.manifestDigest(), child.manifest().length)
          .put("platform", platform.toJson()));
    }
    byte[] body = json(new JsonObject()
        .put("schemaVersion", 2)
        .put("mediaType", types.index())
        .put("manifests", manifests));
    String digest = pushManifest(repo, tag, types.index(), body);
    return new Index(repo, tag, digest, types.index(), body, List.copyOf(children));
  }

  /** Writes a file of {@code size} random bytes, the same for the same seed, into {@code dir}. */
  public static Path randomFile(Path dir, long size, long seed) throws IOException {
    Path file = Files.createTempFile(dir, "random-", ".bin");
    SplittableRandom random = new SplittableRandom(seed);
    ByteBuffer chunk = ByteBuffer.allocate(1 << 20);
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.WRITE)) {
      for (long written = 0; written < size; written += chunk.limit()) {
        chunk.clear();
        // Eight random bytes per call keeps generation of hundreds of MiB well under a second.
        while (chunk.hasRemaining()) {
          chunk.putLong(random.nextLong());
        }
        chunk.flip().limit((int) Math.min(chunk.capacity(), size - written));
        while (chunk.hasRemaining()) {
          out.write(chunk);
        }
      }
    }
    return file;
  }

  /** The {@code sha256:<hex>} digest of {@code data}. */
  public static String sha256(byte[] data) {
    MessageDigest digest = newSha256();
    return "sha256:" + HexFormat.of().formatHex(digest.digest(data));
  }

  /** The {@code sha256:<hex>} digest of a file, read in chunks. */
  public static String sha256(Path file) throws IOException {
    MessageDigest digest = newSha256();
    byte[] buffer = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return "sha256:" + HexFormat.of().formatHex(digest.digest());
  }

  /** Pushes layers and config first: the registry refuses a manifest that references unknown blobs. */
  private Image pushImage(String repo, String tag, int layers, int layerSizeBytes, Flavour types, Platform platform)
      throws IOException, InterruptedException {
    Map<String, byte[]> blobs = new LinkedHashMap<>();
    List<String> layerDigests = new ArrayList<>();
    JsonArray layerDescriptors = new JsonArray();
    JsonArray diffIds = new JsonArray();
    for (int i = 0; i < layers; i++) {
      byte[] content = new byte[layerSizeBytes];
      random.nextBytes(content);
      Map<String, byte[]> files = new LinkedHashMap<>();
      files.put("layer-" + i + ".txt", ("layer " + i + " of " + repo + "\n").getBytes(StandardCharsets.UTF_8));
      files.put("layer-" + i + ".bin", content);
      byte[] tar = tar(files);
      byte[] layer = gzip(tar);
      String digest = pushBlob(repo, layer);
      blobs.put(digest, layer);
      layerDigests.add(digest);
      layerDescriptors.add(descriptor(types.layer(), digest, layer.length));
      diffIds.add(sha256(tar));
    }

    byte[] config = json(platform.toJson()
        .put("config", new JsonObject().put("Cmd", new JsonArray().add("/bin/sh")))
        .put("rootfs", new JsonObject().put("type", "layers").put("diff_ids", diffIds)));
    String configDigest = pushBlob(repo, config);
    blobs.put(configDigest, config);

    byte[] manifest = json(new JsonObject()
        .put("schemaVersion", 2)
        .put("mediaType", types.manifest())
        .put("config", descriptor(types.config(), configDigest, config.length))
        .put("layers", layerDescriptors));
    String digest = pushManifest(repo, tag == null ? sha256(manifest) : tag, types.manifest(), manifest);
    return new Image(repo, tag, digest, types.manifest(), manifest, configDigest, List.copyOf(layerDigests),
        Collections.unmodifiableMap(blobs));
  }

  /** Monolithic upload: open an upload session, then PUT the whole blob to it with the digest. */
  private void upload(String repo, String digest, BodyPublisher body) throws IOException, InterruptedException {
    HttpResponse<String> session = send(HttpRequest.newBuilder(endpoint(repo, "/blobs/uploads/"))
        .POST(BodyPublishers.noBody()), 202);
    String location = session.headers().firstValue("Location")
        .orElseThrow(() -> new IllegalStateException("upload session without Location"));
    // Location may be relative, and usually already carries the registry's own state in its query.
    URI target = session.uri().resolve(location);
    String separator = target.getRawQuery() == null ? "?" : "&";
    send(HttpRequest.newBuilder(URI.create(target + separator + "digest=" + digest))
        // Without an explicit type the registry may parse the body as a form and lose it.
        .header("Content-Type", "application/octet-stream")
        .PUT(body), 201);
  }

  private HttpResponse<String> send(HttpRequest.Builder builder, int expectedStatus)
      throws IOException, InterruptedException {
    HttpRequest request = builder.build();
    HttpResponse<String> response = http.send(request, BodyHandlers.ofString());
    if (response.statusCode() != expectedStatus) {
      throw new IllegalStateException(request.method() + " " + request.uri() + " answered "
          + response.statusCode() + ": " + response.body());
    }
    return response;
  }

  private URI endpoint(String repo, String path) {
    return registry.resolve("/v2/" + repo + path);
  }

  private static JsonObject descriptor(String mediaType, String digest, long size) {
    return new JsonObject().put("mediaType", mediaType).put("digest", digest).put("size", size);
  }

  private static byte[] json(JsonObject json) {
    return json.encode().getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] gzip(byte[] data) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(data.length + 1024);
    try (GZIPOutputStream gzip = new GZIPOutputStream(out)) {
      gzip.write(data);
    }
    return out.toByteArray();
  }

  /** A minimal ustar archive of regular files, with fixed owner, mode and mtime so it is reproducible. */
  private static byte[] tar(Map<String, byte[]> files) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    files.forEach((name, content) -> {
      byte[] header = new byte[TAR_BLOCK];
      text(header, 0, name);
      octal(header, 100, 8, 0644);
      octal(header, 108, 8, 0);
      octal(header, 116, 8, 0);
      octal(header, 124, 12, content.length);
      octal(header, 136, 12, 0);
      header[156] = '0';
      text(header, 257, "ustar\0");
      text(header, 263, "00");
      // The checksum is summed with its own field read as spaces, then written as six digits, NUL, space.
      text(header, 148, "        ");
      int checksum = 0;
      for (byte b : header) {
        checksum += b & 0xFF;
      }
      text(header, 148, String.format("%06o\0 ", checksum));
      out.writeBytes(header);
      out.writeBytes(content);
      out.writeBytes(new byte[(TAR_BLOCK - content.length % TAR_BLOCK) % TAR_BLOCK]);
    });
    out.writeBytes(new byte[2 * TAR_BLOCK]);
    return out.toByteArray();
  }

  /** Writes a number as zero-padded octal filling the field but its last byte, which stays NUL. */
  private static void octal(byte[] header, int offset, int width, long value) {
    text(header, offset, String.format("%0" + (width - 1) + "o", value));
  }

  private static void text(byte[] header, int offset, String value) {
    byte[] bytes = value.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(bytes, 0, header, offset, bytes.length);
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM provides SHA-256", e);
    }
  }
}
