package io.registrymirror.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import java.util.concurrent.CompletionException;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.async.AsyncResponseTransformer;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3AsyncClient;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * S3Proxy, a real S3 API server, as a child process with in-memory storage on a free loopback
 * port, checking AWS signatures with one access key. Its class path is resolved once by Maven
 * from {@code src/test/s3proxy/pom.xml} (S3Proxy cannot share the test class path: it needs
 * another Jackson). The credentials are also set as the AWS SDK's system properties, where the
 * mirror's default credentials chain finds them.
 */
public final class S3Server implements AutoCloseable {

  public static final String ACCESS_KEY = "mirror-test-access";
  public static final String SECRET_KEY = "mirror-test-secret";
  public static final String REGION = "us-east-1";

  private static final Path POM = Path.of("src/test/s3proxy/pom.xml");
  private static final Path CLASS_PATH = Path.of("target/s3proxy/classpath");

  private final Process process;
  private final int port;
  private final Path log;
  private final S3AsyncClient client;

  private S3Server(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
    this.client = S3AsyncClient.builder()
        .endpointOverride(URI.create(url()))
        .region(Region.of(REGION))
        .forcePathStyle(true)
        .requestChecksumCalculation(software.amazon.awssdk.core.checksums.RequestChecksumCalculation.WHEN_REQUIRED)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
        .build();
  }

  /** Starts a server and waits until it answers. */
  public static S3Server start(Path dir) throws IOException, InterruptedException {
    System.setProperty("aws.accessKeyId", ACCESS_KEY);
    System.setProperty("aws.secretAccessKey", SECRET_KEY);
    int port = MirrorProcess.freePort();
    Path properties = dir.resolve("s3proxy.properties");
    Files.writeString(properties, """
        s3proxy.endpoint=http://127.0.0.1:%d
        s3proxy.authorization=aws-v2-or-v4
        s3proxy.identity=%s
        s3proxy.credential=%s
        jclouds.provider=transient-nio2
        jclouds.identity=%s
        jclouds.credential=%s
        """.formatted(port, ACCESS_KEY, SECRET_KEY, ACCESS_KEY, SECRET_KEY));
    Path log = dir.resolve("s3proxy.log");
    Process process = new ProcessBuilder(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dlogback.configurationFile=/dev/null",
        "-cp", classPath(), "org.gaul.s3proxy.Main", "--properties", properties.toString()))
        .redirectErrorStream(true)
        .redirectOutput(log.toFile())
        .start();
    S3Server server = new S3Server(process, port, log);
    server.awaitReady();
    return server;
  }

  /** S3Proxy's class path, resolved by Maven the first time and whenever its POM changes. */
  private static synchronized String classPath() throws IOException, InterruptedException {
    if (!Files.exists(CLASS_PATH) || Files.getLastModifiedTime(CLASS_PATH).compareTo(Files.getLastModifiedTime(POM)) < 0) {
      Process mvn = new ProcessBuilder("mvn", "-B", "-q", "-ntp", "-f", POM.toString(), "dependency:build-classpath",
          "-Dmdep.outputFile=" + CLASS_PATH.toAbsolutePath())
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      if (!mvn.waitFor(5, TimeUnit.MINUTES) || mvn.exitValue() != 0) {
        throw new IllegalStateException("Maven could not resolve S3Proxy from " + POM);
      }
    }
    return Files.readString(CLASS_PATH).trim();
  }

  private void awaitReady() throws IOException, InterruptedException {
    HttpClient ping = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("S3Proxy exited:\n" + Files.readString(log));
      }
      try {
        ping.send(HttpRequest.newBuilder(URI.create(url() + "/")).build(), HttpResponse.BodyHandlers.discarding());
        return;
      } catch (IOException notYet) {
        TimeUnit.MILLISECONDS.sleep(50);
      }
    }
    close();
    throw new IllegalStateException("S3Proxy did not answer within 30 s:\n" + Files.readString(log));
  }

  public String url() {
    return "http://127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  /** The mirror's {@code s3} section for {@code bucket} on this server. */
  public String yaml(String bucket) {
    return """
        s3:
          endpoint: %s
          bucket: %s
          region: %s
          pathStyle: true
        """.formatted(url(), bucket, REGION);
  }

  public void createBucket(String bucket) {
    client.createBucket(r -> r.bucket(bucket)).join();
  }

  /** Whether the bucket holds an object under {@code key}. */
  public boolean exists(String bucket, String key) {
    try {
      client.headObject(r -> r.bucket(bucket).key(key)).join();
      return true;
    } catch (CompletionException e) {
      if (e.getCause() instanceof NoSuchKeyException || e.getCause() instanceof S3Exception s3 && s3.statusCode() == 404) {
        return false;
      }
      throw e;
    }
  }

  public byte[] get(String bucket, String key) {
    return client.getObject(r -> r.bucket(bucket).key(key), AsyncResponseTransformer.toBytes()).join().asByteArray();
  }

  public void put(String bucket, String key, byte[] content) {
    client.putObject(r -> r.bucket(bucket).key(key), AsyncRequestBody.fromBytes(content)).join();
  }

  @Override
  public void close() {
    client.close();
    process.destroyForcibly();
    try {
      process.waitFor(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
