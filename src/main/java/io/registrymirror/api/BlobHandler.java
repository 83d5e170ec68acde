package io.registrymirror.api;

import io.netty.util.internal.PlatformDependent;
import io.registrymirror.error.OciError;
import io.registrymirror.log.EventLog;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.proxy.BlobService;
import io.registrymirror.proxy.BlobSource;
import io.registrymirror.upstream.BlobDownload;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;

/**
 * {@code GET}/{@code HEAD /v2/<name>/blobs/<digest>}: cached blobs go out zero-copy with
 * {@code sendFile}; a miss is streamed to the client as upstream's bytes arrive. Ranges work on
 * both, including while the blob is still arriving.
 */
final class BlobHandler {

  private static final EventLog LOG = EventLog.of(BlobHandler.class);

  /** Threads of its own for opening and closing cached blobs: a hit never queues behind fills. */
  private static final int FILE_THREADS = 4;

  private final BlobService blobs;
  private final MirrorMetrics metrics;
  private final WorkerExecutor files;
  private final SendMemory sendMemory;

  /** @param sendTimeout how long a client may take to accept a chunk read for it */
  BlobHandler(Vertx vertx, BlobService blobs, MirrorMetrics metrics, Duration sendTimeout) {
    this.blobs = blobs;
    this.metrics = metrics;
    this.files = vertx.createSharedWorkerExecutor("registry-mirror-blob-files", FILE_THREADS);
    this.sendMemory = new SendMemory(vertx, SendMemory.defaultLimit(PlatformDependent.maxDirectMemory()),
        sendTimeout);
    metrics.watchSendMemory(sendMemory::used, sendMemory.limit());
  }

  void handle(RoutingContext ctx, Target target, String reference) {
    Digest digest = parseDigest(reference);
    HttpServerRequest request = ctx.request();
    HttpServerResponse response = ctx.response();
    String range = request.getHeader(Headers.RANGE);
    // Refused before anything is fetched; satisfiability waits for the size.
    ByteRange.validate(range);
    if (matches(request, digest) && blobs.isCached(digest)) {
      response.setStatusCode(304).putHeader(HttpHeaders.ETAG, etag(digest))
          .putHeader(Headers.CACHE_STATUS, Result.HIT.label()).end();
      metrics.request(Endpoint.BLOB, Result.HIT);
      return;
    }
    if (request.method() == HttpMethod.HEAD) {
      blobs.stat(target, digest).onSuccess(stat -> {
        headers(response, digest, stat.size(), stat.cached() ? Result.HIT : Result.MISS);
        response.end();
        metrics.request(Endpoint.BLOB, stat.cached() ? Result.HIT : Result.MISS);
      }).onFailure(ctx::fail);
      return;
    }
    get(ctx, target, digest, range, false);
  }

  /** Sends the blob from the cache, or from upstream as it arrives; {@code again} after a missing file. */
  private void get(RoutingContext ctx, Target target, Digest digest, String range, boolean again) {
    // A request from another replica (or any that says it is) is answered here, never sent on.
    boolean forPeer = ctx.request().headers().contains(PeerClient.HEADER);
    blobs.open(target, digest, forPeer).onComplete(opened -> {
      if (opened.failed()) {
        ctx.fail(opened.cause());
        return;
      }
      try {
        if (opened.result() instanceof BlobSource.Cached c) {
          sendCached(ctx, target, digest, c, range, again);
        } else if (opened.result() instanceof BlobSource.Filling f) {
          sendFilling(ctx, digest, f, range);
        } else if (opened.result() instanceof BlobSource.Uncached u) {
          sendUncached(ctx, digest, u);
        }
      } catch (RuntimeException e) {
        ctx.fail(e);
      }
    });
  }

  private void sendCached(RoutingContext ctx, Target target, Digest digest, BlobSource.Cached c,
      String header, boolean again) {
    HttpServerResponse response = ctx.response();
    ByteRange range;
    try {
      range = ByteRange.parse(header, c.size());
    } catch (RuntimeException e) {
      c.release().run();
      throw e;
    }
    headers(response, digest, c.size(), Result.HIT);
    if (range != null) {
      response.setStatusCode(206).putHeader(HttpHeaders.CONTENT_RANGE, range.contentRange(c.size()))
          .putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(range.length()));
    }
    long offset = range == null ? 0 : range.start();
    long length = range == null ? c.size() : range.length();
    send(ctx, c.file(), offset, length).onComplete(sent -> {
      c.release().run();
      if (sent.succeeded()) {
        metrics.request(Endpoint.BLOB, Result.HIT);
      } else if (response.headWritten()) {
        LOG.debug("blob.send.aborted", "digest", digest, "error", sent.cause().getMessage());
      } else if (gone(sent.cause()) && !again) {
        // Removed by hand, and nothing sent yet: forgotten, and fetched again for this client.
        LOG.warn("blob.file.missing", "digest", digest);
        blobs.forget(digest);
        response.setStatusCode(200).headers().remove(HttpHeaders.CONTENT_RANGE);
        get(ctx, target, digest, header, true);
      } else {
        LOG.warn("blob.send.failed", "digest", digest, "error", sent.cause().toString());
        ctx.fail(OciError.UNAVAILABLE.exception("cached blob " + digest + " is unreadable; retry"));
      }
    });
  }

  /**
   * Sends a cached file, opened and closed on a worker: an open can wait on the disk, and the
   * event loop must not. A plain connection gets it by {@code sendFile}, which the kernel copies;
   * a TLS one in chunks read on a worker (see {@link FileBlob}). Fails if the response could not
   * be completed.
   */
  Future<Void> send(RoutingContext ctx, String file, long offset, long length) {
    HttpServerResponse response = ctx.response();
    return files.executeBlocking(() -> FileChannel.open(Path.of(file), StandardOpenOption.READ), false)
        .compose(channel -> ctx.request().isSSL() ? sendRead(ctx.request(), channel, offset, length)
            : sendChannel(response, channel, offset, length)
                .eventually(() -> files.executeBlocking(() -> {
                  channel.close();
                  return null;
                }, false)));
  }

  private Future<Void> sendRead(HttpServerRequest request, FileChannel channel, long offset, long length) {
    HttpServerResponse response = request.response();
    if (!response.headers().contains(HttpHeaders.CONTENT_LENGTH)) {
      response.putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(length));
    }
    FileBlob blob = new FileBlob(files, channel, offset + length);
    new FillSender(blob, request, offset, offset + length, sendMemory).start();
    return blob.released().compose(v -> response.ended() ? Future.succeededFuture()
        : Future.failedFuture("the connection closed before the whole file was sent"));
  }

  private static boolean gone(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof NoSuchFileException) {
        return true;
      }
    }
    return false;
  }

  /** sendFile, whose refusals (a client already gone) come as a failed future, never thrown. */
  private static Future<Void> sendChannel(HttpServerResponse response, FileChannel channel, long offset,
      long length) {
    try {
      return response.sendFile(channel, offset, length);
    } catch (RuntimeException e) {
      return Future.failedFuture(e);
    }
  }

  private void sendFilling(RoutingContext ctx, Digest digest, BlobSource.Filling f, String header) {
    HttpServerResponse response = ctx.response();
    long size = f.blob().expectedSize();
    ByteRange range;
    try {
      range = size < 0 ? null : ByteRange.parse(header, size);
    } catch (RuntimeException e) {
      f.blob().release();
      throw e;
    }
    headers(response, digest, size, Result.MISS);
    long start = 0;
    long end = size;
    if (range != null) {
      response.setStatusCode(206).putHeader(HttpHeaders.CONTENT_RANGE, range.contentRange(size));
      start = range.start();
      end = range.end() + 1;
      response.putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(end - start));
    }
    if (size < 0) {
      response.setChunked(true);
    }
    metrics.request(Endpoint.BLOB, Result.MISS);
    // Headers go out now, before any byte: clients give up on a mirror that is slow to answer.
    // An empty response would be complete with its headers, so it waits for verification.
    if (end < 0 || end > start) {
      response.writeHead();
    }
    new FillSender(f.blob(), ctx.request(), start, end, sendMemory).start();
  }

  /**
   * A blob the cache cannot take, from upstream to this one client as it arrives: the whole
   * blob, a Range notwithstanding (the 200 says so), its last byte held back until verified.
   */
  private void sendUncached(RoutingContext ctx, Digest digest, BlobSource.Uncached u) {
    HttpServerResponse response = ctx.response();
    BlobDownload download = u.download();
    long size = download.expectedSize();
    headers(response, digest, size, Result.MISS);
    if (size < 0) {
      response.setChunked(true);
    }
    metrics.request(Endpoint.BLOB, Result.MISS);
    VerifiedRelay relay = new VerifiedRelay(response, digest, size);
    download.pipeTo(relay, relay::received).onFailure(err -> {
      LOG.warn("blob.relay.failed", "digest", digest, "error", err.getMessage());
      relay.discard();
      response.reset();
      download.cancel();
    });
  }

  /** The headers of a whole blob; its length only when known (an upstream HEAD may omit it). */
  private static void headers(HttpServerResponse response, Digest digest, long size, Result result) {
    response.putHeader(HttpHeaders.CONTENT_TYPE, "application/octet-stream")
        .putHeader(Headers.CACHE_STATUS, result.label())
        .putHeader(Headers.CONTENT_DIGEST, digest.toString())
        .putHeader(HttpHeaders.ETAG, etag(digest))
        .putHeader(HttpHeaders.ACCEPT_RANGES, "bytes");
    if (size >= 0) {
      response.putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(size));
    }
  }

  static Digest parseDigest(String reference) {
    try {
      return Digest.parse(reference);
    } catch (IllegalArgumentException e) {
      throw OciError.DIGEST_INVALID.exception(e.getMessage());
    }
  }

  static String etag(Digest digest) {
    return "\"" + digest + "\"";
  }

  static boolean matches(HttpServerRequest request, Digest digest) {
    String inm = request.getHeader(HttpHeaders.IF_NONE_MATCH);
    return inm != null && inm.contains(etag(digest));
  }
}
