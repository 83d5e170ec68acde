package io.registrymirror.api;

import io.registrymirror.error.OciError;
import io.registrymirror.metrics.EventLog;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.metrics.MirrorMetrics.Kind;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.oci.Digest;
import io.registrymirror.proxy.BlobService;
import io.registrymirror.proxy.BlobSource;
import io.registrymirror.proxy.Target;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * {@code GET}/{@code HEAD /v2/<name>/blobs/<digest>}: cached blobs go out zero-copy with
 * {@code sendFile}; a miss is streamed to the client as upstream's bytes arrive. Ranges work on
 * both, including while the blob is still arriving.
 */
final class BlobHandler {

  private static final EventLog LOG = EventLog.of(BlobHandler.class);

  private final BlobService blobs;
  private final MirrorMetrics metrics;

  BlobHandler(BlobService blobs, MirrorMetrics metrics) {
    this.blobs = blobs;
    this.metrics = metrics;
  }

  void handle(RoutingContext ctx, Target target, String reference) {
    Digest digest = parseDigest(reference);
    HttpServerRequest request = ctx.request();
    HttpServerResponse response = ctx.response();
    String range = request.getHeader(Headers.RANGE);
    // Refused before anything is fetched; satisfiability waits for the size.
    ByteRange.validate(range);
    if (blobs.isCached(digest) && matches(request, digest)) {
      response.setStatusCode(304).putHeader(HttpHeaders.ETAG, etag(digest)).end();
      metrics.request(Kind.BLOB, Result.HIT);
      return;
    }
    boolean cached = blobs.isCached(digest);
    if (request.method() == HttpMethod.HEAD) {
      blobs.stat(target, digest).onSuccess(size -> {
        headers(response, digest, size);
        response.end();
        metrics.request(Kind.BLOB, cached ? Result.HIT : Result.MISS);
      }).onFailure(ctx::fail);
      return;
    }
    blobs.open(target, digest).onComplete(opened -> {
      if (opened.failed()) {
        ctx.fail(opened.cause());
        return;
      }
      try {
        if (opened.result() instanceof BlobSource.Cached c) {
          sendCached(ctx, digest, c, range);
        } else if (opened.result() instanceof BlobSource.Filling f) {
          sendFilling(ctx, digest, f, range);
        }
      } catch (RuntimeException e) {
        ctx.fail(e);
      }
    });
  }

  private void sendCached(RoutingContext ctx, Digest digest, BlobSource.Cached c, String header) {
    HttpServerResponse response = ctx.response();
    ByteRange range = ByteRange.parse(header, c.size());
    headers(response, digest, c.size());
    if (range != null) {
      response.setStatusCode(206).putHeader(HttpHeaders.CONTENT_RANGE, range.contentRange(c.size()))
          .putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(range.length()));
    }
    long offset = range == null ? 0 : range.start();
    long length = range == null ? c.size() : range.length();
    Vertx vertx = ctx.vertx();
    // Opened and closed on a worker: either can wait on the disk, and the event loop must not.
    vertx.executeBlocking(() -> FileChannel.open(Path.of(c.file()), StandardOpenOption.READ), false)
        .compose(channel -> send(response, channel, offset, length)
            .eventually(() -> vertx.executeBlocking(() -> {
              channel.close();
              return null;
            }, false)))
        .onComplete(sent -> {
          if (sent.succeeded()) {
            metrics.request(Kind.BLOB, Result.HIT);
          } else if (!response.headWritten()) {
            // The file vanished under us (removed by hand): forget it so the next request refetches.
            blobs.forget(digest);
            ctx.fail(OciError.UNAVAILABLE.exception("cached blob " + digest + " is unreadable; retry"));
          } else {
            LOG.debug("blob.send.aborted", "digest", digest, "error", sent.cause().getMessage());
          }
        });
  }

  /** sendFile, whose refusals (a client already gone) come as a failed future, never thrown. */
  private static Future<Void> send(HttpServerResponse response, FileChannel channel, long offset, long length) {
    try {
      return response.sendFile(channel, offset, length);
    } catch (RuntimeException e) {
      return Future.failedFuture(e);
    }
  }

  private void sendFilling(RoutingContext ctx, Digest digest, BlobSource.Filling f, String header) {
    HttpServerResponse response = ctx.response();
    long size = f.fill().expectedSize();
    ByteRange range;
    try {
      range = size < 0 ? null : ByteRange.parse(header, size);
    } catch (RuntimeException e) {
      f.fill().release();
      throw e;
    }
    headers(response, digest, size);
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
    metrics.request(Kind.BLOB, Result.MISS);
    // Headers go out now, before any byte: clients give up on a mirror that is slow to answer.
    // An empty response would be complete with its headers, so it waits for verification.
    if (end < 0 || end > start) {
      response.writeHead();
    }
    new FillSender(f.fill(), response, start, end).start();
  }

  /** The headers of a whole blob; its length only when known (an upstream HEAD may omit it). */
  private static void headers(HttpServerResponse response, Digest digest, long size) {
    response.putHeader(HttpHeaders.CONTENT_TYPE, "application/octet-stream")
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
