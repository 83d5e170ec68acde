# registry-mirror as a container image: see docs/container.md.
#
#   docker build -t registry-mirror .                           # jar built by Maven in the build stage
#   docker build --build-arg JAR_FROM=host -t registry-mirror .  # jar from target/ (mvn package first)
#
# Both need BuildKit (the default since Docker 23; DOCKER_BUILDKIT=1 before), which builds only
# the stages the image needs: with JAR_FROM=host, the Maven stage and its base are never used.
# The bases are arguments so that an image can be built where no registry is reachable, from
# bases imported locally (.ci/image makes them from Debian packages).
ARG BUILD_IMAGE=maven:3.9-eclipse-temurin-17
ARG RUNTIME_IMAGE=eclipse-temurin:17-jre
# Which stage provides the jar: "build" (Maven in the container) or "host" (target/registry-mirror.jar).
ARG JAR_FROM=build

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY pom.xml .
COPY src/main src/main
# maven.test.skip leaves the tests out of the build context and the build: CI runs them.
RUN mvn -B -ntp -q package -Dmaven.test.skip=true

FROM scratch AS host
COPY target/registry-mirror.jar /src/target/registry-mirror.jar

FROM ${JAR_FROM} AS jar

FROM ${RUNTIME_IMAGE}
# A fixed UID, so that the owner of the cache volume's files is the same in every container
# and can be given to a bind mount or to Kubernetes' fsGroup.
RUN groupadd --system --gid 10001 registry-mirror \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin registry-mirror \
 && mkdir -p /var/cache/registry-mirror \
 && chown 10001:10001 /var/cache/registry-mirror
COPY conf/registry-mirror.yaml /etc/registry-mirror/registry-mirror.yaml
COPY --from=jar /src/target/registry-mirror.jar /opt/registry-mirror/registry-mirror.jar
# A class-data archive of the classes a mirror's first pulls load, made by the jar's own training
# run (an image pulled through a mirror in that process, on loopback only) with this image's JVM:
# started with it, the mirror answers sooner and its first pull's first byte comes in half the
# time (bench/README.md, "First pulls after a start"). A JVM that cannot use it ignores it.
# -Xlog:cds=error: the classes the JVM cannot archive (generated, JFR events) are no news.
RUN java -XX:ArchiveClassesAtExit=/opt/registry-mirror/registry-mirror.jsa -Xlog:cds=error \
      -jar /opt/registry-mirror/registry-mirror.jar train
# They override the file's listen and cache.dir, whatever configuration is mounted over it.
ENV MIRROR_LISTEN=0.0.0.0:5000 \
    MIRROR_CACHE_DIR=/var/cache/registry-mirror
# A new named volume starts as a copy of this directory, owned by 10001.
VOLUME /var/cache/registry-mirror
USER 10001:10001
EXPOSE 5000
# JVM flags. conf/jvm.options fixes heap (-Xmx128m) and direct memory (64m) for a bare host; in
# a container the memory limit is what is known, so the heap is a share of it instead, and what
# the mirror bounds by the heap (bodies held in memory: a quarter of it) follows. Direct memory,
# where Netty keeps network buffers, is left at the JVM's default, the maximum heap: together at
# most 70% of the limit. The rest is for metaspace, code and threads: the benchmark's peak RSS was
# 303 MiB with 128 + 64 MiB allowed, so 110 MiB or more. 512 MiB is the least limit to give.
# G1 as on a bare host: below 2 CPUs or 1792 MiB the JVM would choose the serial collector,
# which stops all requests for each collection.
# ExitOnOutOfMemoryError: a JVM out of heap is in an unknown state; exiting lets it be restarted.
# -XX:-UsePerfData: no /tmp/hsperfdata_* file (which only jps and jstat read), so the JVM writes
# nothing outside the cache volume and runs on a read-only root file system even without /tmp.
# Exec form: java is PID 1 and gets SIGTERM itself, which stops the mirror cleanly.
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=35", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", \
            "-XX:-UsePerfData", "-XX:SharedArchiveFile=/opt/registry-mirror/registry-mirror.jsa", \
            "-jar", "/opt/registry-mirror/registry-mirror.jar"]
CMD ["--config", "/etc/registry-mirror/registry-mirror.yaml"]
