package io.registrymirror.oci;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Digest handling: parsing the digests in every blob and manifest path, checking a manifest's
 * bytes, and hashing a megabyte of blob from a heap buffer and from a direct one (the fill hashes
 * what it writes; which kind it holds decides whether hashing copies).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class DigestBenchmark {

  private static final int MIB = 1 << 20;

  private String valid = "sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8";
  private String uppercaseHex = "sha256:4ABCF20661432FB2D719AAF90656F55C287F8CA915DC1C92EC14FF61E67FBAF8";
  private byte[] manifest;
  private Digest manifestDigest;
  private ByteBuffer heap;
  private ByteBuffer direct;
  private MessageDigest sha256;

  @Setup
  public void setUp() {
    Random random = new Random(7);
    manifest = new byte[1200];
    random.nextBytes(manifest);
    manifestDigest = Digest.sha256(manifest);
    byte[] blob = new byte[MIB];
    random.nextBytes(blob);
    heap = ByteBuffer.wrap(blob);
    direct = ByteBuffer.allocateDirect(MIB).put(blob).flip();
    sha256 = Digest.Algorithm.SHA256.newMessageDigest();
  }

  @Benchmark
  public Digest parse() {
    return Digest.parse(valid);
  }

  @Benchmark
  public Digest parseRefused() {
    return Digest.parseOrNull(uppercaseHex);
  }

  @Benchmark
  public boolean verifyManifest() {
    return manifestDigest.matches(manifest);
  }

  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public byte[] hashMiBFromHeap() {
    sha256.update(heap.duplicate());
    return sha256.digest();
  }

  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public byte[] hashMiBFromDirect() {
    sha256.update(direct.duplicate());
    return sha256.digest();
  }
}
