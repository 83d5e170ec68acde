package io.registrymirror.upstream;

import io.registrymirror.config.UpstreamConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.registrymirror.memory.BodyBudget;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.oci.Descriptor;
import io.registrymirror.oci.Digest;
import io.registrymirror.oci.Manifest;
import io.registrymirror.oci.MediaTypes;
import io.registrymirror.oci.Reference;
import io.registrymirror.oci.RepositoryName;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.Optional;
import java.util.function.Function;

/**
 * Talks to one upstream registry: authentication, redirects and timeouts are handled here, so
 * that callers see either a usable response or a {@link RegistryException} fit for the client.
 */
public final class UpstreamClient {

  private final Vertx vertx;
  private final UpstreamConfig config;
  private final UpstreamExchange exchange;
  private final PasswordFile passwordFile;
  private final BodyBudget budget;

  /**
   * @param metadata the connection pool for manifests, tags, referrers and tokens
   * @param content the pool for blob bodies: long transfers that must not make tag
   *     resolutions queue behind them
   * @param budget the memory every whole body read here (manifests, listings, errors) counts
   *     against
   */
  public UpstreamClient(Vertx vertx, HttpClient metadata, HttpClient content,
      UpstreamConfig config, MirrorMetrics metrics, BodyBudget budget) {
    this.vertx = vertx;
    this.budget = budget;
    this.config = config;
    RemoteHosts hosts = new RemoteHosts(vertx, config);
    Authenticator auth = new Authenticator(vertx, metadata, config, hosts, budget);
    this.exchange = new UpstreamExchange(vertx, metadata, content, config, metrics, auth, hosts);
    this.passwordFile = config.passwordFile() == null || config.credentials() == null ? null
        : new PasswordFile(vertx, config, auth::rotate);
  }

  /** Stops watching the password file, if there is one. */
  public void close() {
    if (passwordFile != null) {
      passwordFile.stop();
    }
  }

  public UpstreamConfig config() {
    return config;
  }

  public String name() {
    return config.name();
  }

  /** Requests left in the upstream's quota window, from its last {@code ratelimit-remaining}; -1 if unknown. */
  public int rateLimitRemaining() {
    return exchange.rateLimitRemaining();
  }

  /** The quota's size, from its last {@code ratelimit-limit}; -1 if unknown. */
  public int rateLimitLimit() {
    return exchange.rateLimitLimit();
  }

  /**
   * Resolves a reference with a HEAD, which Docker Hub does not count against pull limits.
   * Empty when upstream answered without enough headers to build a descriptor, or refuses HEAD,
   * in which case the caller must GET.
   */
  public Future<Optional<Descriptor>> headManifest(RepositoryName name, Reference ref, String accept) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap().set(HttpHeaders.ACCEPT, accept);
    return exchange.send(HttpMethod.HEAD, name, "/manifests/" + ref, headers).map(resp -> {
      resp.resume();
      if (resp.statusCode() == 405) {
        return Optional.<Descriptor>empty();
      }
      if (resp.statusCode() != 200) {
        throw UpstreamResponses.failure(name(), resp.statusCode(), resp.headers(), null, OciError.MANIFEST_UNKNOWN);
      }
      Digest digest = Digest.parseOrNull(resp.getHeader("Docker-Content-Digest"));
      String type = MediaTypes.bare(resp.getHeader(HttpHeaders.CONTENT_TYPE));
      long size = UpstreamResponses.contentLength(resp);
      if (digest == null || type.isEmpty() || size < 0) {
        return Optional.<Descriptor>empty();
      }
      refuseUnservable(type, size);
      return Optional.of(new Descriptor(type, digest, size));
    });
  }

  /**
   * Fetches a manifest's exact bytes and checks them: by digest, against the digest; by tag,
   * against upstream's {@code Docker-Content-Digest} when it sends one. The body is held under
   * the memory budget only while {@code use} runs (e.g. stores it), until its future completes;
   * {@code use} must not keep the manifest beyond that.
   */
  public <T> Future<T> getManifest(RepositoryName name, Reference ref, String accept,
      Function<Manifest, Future<T>> use) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap().set(HttpHeaders.ACCEPT, accept);
    return exchange.send(HttpMethod.GET, name, "/manifests/" + ref, headers).compose(resp -> {
      long length = UpstreamResponses.contentLength(resp);
      if (resp.statusCode() != 200) {
        return failure(resp, OciError.MANIFEST_UNKNOWN);
      }
      String type = MediaTypes.bare(resp.getHeader(HttpHeaders.CONTENT_TYPE));
      try {
        refuseUnservable(type.isEmpty() ? "unknown" : type, length);
      } catch (RegistryException e) {
        UpstreamResponses.abandon(resp);
        return Future.failedFuture(e);
      }
      Digest claimed = ref instanceof Reference.ByDigest d
          ? d.digest() : Digest.parseOrNull(resp.getHeader("Docker-Content-Digest"));
      return UpstreamResponses.readBody(resp, Manifest.MAX_SIZE, OciError.MANIFEST_INVALID, budget)
          .compose(held -> {
            Future<T> used;
            try {
              used = use.apply(verified(name, ref, type, claimed, held.body()));
            } catch (RuntimeException e) {
              used = Future.failedFuture(e);
            }
            return used.andThen(r -> held.lease().release());
          });
    });
  }

  private Manifest verified(RepositoryName name, Reference ref, String type, Digest claimed, Buffer body) {
    String mediaType = type.isEmpty() ? typeFromBody(body) : type;
    refuseUnservable(mediaType, body.length());
    Digest actual = Manifest.hash(claimed == null ? Digest.Algorithm.SHA256 : claimed.algorithm(), body);
    if (claimed != null && !claimed.equals(actual)) {
      throw OciError.UNAVAILABLE.exception("upstream " + name() + " sent a manifest for "
          + name + ":" + ref + " that does not match " + claimed);
    }
    return new Manifest(actual, mediaType, body);
  }

  /** Starts downloading a blob: on 200, its body waits, paused, for the caller to pipe it. */
  public Future<BlobDownload> getBlob(RepositoryName name, Digest digest) {
    return exchange.getBody(name, "/blobs/" + digest, MultiMap.caseInsensitiveMultiMap())
        .compose(answer -> {
          if (answer.response().statusCode() == 200) {
            return Future.succeededFuture(new BlobDownload(vertx, this, name, digest, answer));
          }
          return failure(answer.response(), OciError.BLOB_UNKNOWN);
        });
  }

  /**
   * GETs the rest of a blob from {@code offset}, to resume a transfer that broke off. With a
   * validator from the first response, upstream sends the rest only if the content is still
   * the same ({@code If-Range}); anything but a 206 starting at {@code offset} fails.
   */
  Future<UpstreamExchange.Tapped> getBlobFrom(RepositoryName name, Digest digest, long offset,
      String validator) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap().set("Range", "bytes=" + offset + "-");
    if (validator != null) {
      headers.set("If-Range", validator);
    }
    return exchange.getBody(name, "/blobs/" + digest, headers).compose(answer -> {
      HttpClientResponse resp = answer.response();
      String range = resp.getHeader(HttpHeaders.CONTENT_RANGE);
      if (resp.statusCode() == 206 && range != null && range.startsWith("bytes " + offset + "-")) {
        return Future.succeededFuture(answer);
      }
      UpstreamResponses.abandon(resp);
      return Future.failedFuture(OciError.UNAVAILABLE.exception("upstream " + name()
          + " cannot resume " + digest + " at " + offset + " (answered " + resp.statusCode() + ")"));
    });
  }

  /** HEADs a blob, for a client's HEAD on a blob the mirror does not hold: no fill starts. */
  public Future<Long> headBlob(RepositoryName name, Digest digest) {
    return exchange.send(HttpMethod.HEAD, name, "/blobs/" + digest, MultiMap.caseInsensitiveMultiMap())
        .map(resp -> {
          resp.resume();
          if (resp.statusCode() != 200) {
            throw UpstreamResponses.failure(name(), resp.statusCode(), resp.headers(), null, OciError.BLOB_UNKNOWN);
          }
          return UpstreamResponses.contentLength(resp);
        });
  }

  /**
   * A small JSON answer passed through to the client as upstream sent it (tags, referrers); its
   * body is held under the memory budget until the caller releases {@code lease}.
   */
  public record Passthrough(int status, MultiMap headers, Buffer body, BodyBudget.Lease lease) {}

  public Future<Passthrough> fetch(RepositoryName name, String pathAndQuery, int maxBytes) {
    return exchange.send(HttpMethod.GET, name, pathAndQuery, MultiMap.caseInsensitiveMultiMap()
            .set(HttpHeaders.ACCEPT, "application/json, application/vnd.oci.image.index.v1+json"))
        .compose(resp -> UpstreamResponses.readBody(resp, maxBytes, OciError.UNAVAILABLE, budget)
            .map(held -> new Passthrough(resp.statusCode(), resp.headers(), held.body(), held.lease())));
  }

  /**
   * Fails with what an error answer says, its body read under the memory budget; {@code missing}
   * is the error a 404 stands for.
   */
  private <T> Future<T> failure(HttpClientResponse resp, OciError missing) {
    return UpstreamResponses.errorBody(resp, budget).map(body -> {
      throw UpstreamResponses.failure(name(), resp.statusCode(), resp.headers(), body, missing);
    });
  }

  private static void refuseUnservable(String mediaType, long size) {
    if (MediaTypes.isSchema1(mediaType)) {
      throw OciError.MANIFEST_INVALID.exception("schema 1 manifests are not served");
    }
    if (size > Manifest.MAX_SIZE) {
      throw OciError.MANIFEST_INVALID.exception("manifest exceeds " + Manifest.MAX_SIZE + " bytes");
    }
    for (int i = 0; i < mediaType.length(); i++) {
      if (mediaType.charAt(i) < 0x21 || mediaType.charAt(i) > 0x7e) {
        throw OciError.MANIFEST_INVALID.exception("upstream sent an invalid media type");
      }
    }
  }

  /** For a registry that sends no Content-Type: the body's own mediaType, as clients also do. */
  private static String typeFromBody(Buffer body) {
    try {
      JsonObject json = body.toJsonObject();
      if (json.getInteger("schemaVersion", 0) == 1) {
        return MediaTypes.DOCKER_SCHEMA1;
      }
      return MediaTypes.bare(json.getString("mediaType", MediaTypes.OCI_MANIFEST));
    } catch (RuntimeException e) {
      throw OciError.MANIFEST_INVALID.exception("upstream sent a manifest that is not JSON");
    }
  }
}
