package io.registrymirror.api;

import io.registrymirror.error.RegistryException;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Splitting a request path, which every {@code /v2/} request does before anything else: the
 * common shapes, a deep name, and a refused one (the abuse a mirror on the internet sees).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ApiPathBenchmark {

  private String blob =
      "/v2/library/alpine/blobs/sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8";
  private String tag = "/v2/library/alpine/manifests/3.20";
  private String deep = "/v2/ghcr.io/example-org/platform-team/build_tools/runner/manifests/v1.24.3-rc.1";
  private String uppercase = "/v2/Library/Alpine/manifests/latest";

  @Benchmark
  public ApiPath blobByDigest() {
    return ApiPath.parse(blob);
  }

  @Benchmark
  public ApiPath manifestByTag() {
    return ApiPath.parse(tag);
  }

  @Benchmark
  public ApiPath deepName() {
    return ApiPath.parse(deep);
  }

  @Benchmark
  public Object refusedName() {
    try {
      return ApiPath.parse(uppercase);
    } catch (RegistryException e) {
      return e;
    }
  }
}
