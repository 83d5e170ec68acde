package io.registrymirror.api;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.registrymirror.cluster.Peers;
import io.registrymirror.config.Htpasswd;
import io.registrymirror.config.LimitsConfig;
import io.registrymirror.error.OciError;
import io.registrymirror.metrics.MirrorMetrics;
import io.registrymirror.metrics.MirrorMetrics.Result;
import io.registrymirror.metrics.MirrorMetrics.Source;
import io.registrymirror.oci.Endpoint;
import io.registrymirror.proxy.BlobService;
import io.registrymirror.proxy.CacheAdmin;
import io.registrymirror.proxy.CacheHealth;
import io.registrymirror.proxy.ManifestService;
import io.registrymirror.proxy.Prefetcher;
import io.registrymirror.tags.TagStore;
import io.registrymirror.upstream.PeerClient;
import io.registrymirror.upstream.Target;
import io.registrymirror.upstream.Upstreams;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/** The HTTP surface: the read side of the distribution API under {@code /v2/}, and ops endpoints. */
public final class RegistryApi {

  private final Vertx vertx;
  private final Upstreams upstreams;
  private final MirrorMetrics metrics;
  private final BlobHandler blobs;
  private final ManifestHandler manifests;
  private final ListingHandler listings;
  private final OpsHandler ops;
  private final ErrorHandler errors;
  private final ClientAuth auth;
  private final TagsHandler tags;
  private final AdminGuard admin;
  private final PrefetchHandler prefetch;
  private final CacheAdminHandler cacheAdmin;
  private final UpstreamHealth upstreamHealth;
  private final StatusHandler status;
  private final AccessLog accessLog = new AccessLog();
  private final Peers peers;

  /**
   * @param htpasswd the users allowed to pull, or null to let anyone pull
   * @param limits how often a client may fail to log in, how long it may take to accept a chunk
   * @param adminToken the token the admin endpoints require, or null to answer loopback clients only
   * @param peers the other replicas, whose requests carry the cluster's secret in place of credentials
   */
  public RegistryApi(Vertx vertx, Upstreams upstreams, BlobService blobs, ManifestService manifests,
      MirrorMetrics metrics, PrometheusMeterRegistry prometheus, CacheHealth cache, Htpasswd htpasswd,
      LimitsConfig limits, TagStore tagStore, Prefetcher prefetcher, CacheAdmin cacheAdmin, String adminToken,
      Peers peers) {
    this.vertx = vertx;
    this.peers = peers;
    this.upstreams = upstreams;
    this.metrics = metrics;
    this.blobs = new BlobHandler(vertx, blobs, metrics, limits.sendTimeout());
    this.manifests = new ManifestHandler(manifests, metrics, this.blobs);
    this.listings = new ListingHandler(metrics);
    this.ops = new OpsHandler(vertx, prometheus, cache);
    this.errors = new ErrorHandler(metrics);
    this.auth = htpasswd == null ? null : new ClientAuth(vertx, htpasswd, limits);
    this.tags = new TagsHandler(tagStore);
    this.admin = new AdminGuard(adminToken);
    this.prefetch = new PrefetchHandler(upstreams, prefetcher);
    this.cacheAdmin = new CacheAdminHandler(cacheAdmin);
    this.upstreamHealth = new UpstreamHealth(vertx, prometheus);
    this.status = new StatusHandler(upstreams, tagStore, prometheus, upstreamHealth, peers);
  }

  /** A router for one server instance; handlers share the services, not per-request state. */
  public Router router() {
    Router router = Router.router(vertx);
    router.route().handler(accessLog);
    router.get("/healthz").handler(ops::live);
    router.get("/readyz").handler(ops::ready);
    router.get("/metrics").handler(ops::metrics);
    router.route("/v2*").handler(ctx -> {
      // On every answer, challenges included: clients tell a registry by it.
      ctx.response().putHeader(Headers.API_VERSION, Headers.API_VERSION_VALUE);
      ctx.next();
    });
    if (auth != null) {
      router.route("/v2*").handler(ctx -> {
        if (fromReplica(ctx)) {
          ctx.next();
        } else {
          auth.handle(ctx);
        }
      });
      router.route(TagsHandler.PREFIX + "*").handler(auth);
      // The status page shows what the tag API does: to the same clients.
      router.route(StatusPage.PATH).handler(auth);
      router.route(StatusHandler.PATH).handler(auth);
    }
    router.route("/v2*").handler(this::distribution).failureHandler(errors);
    router.get(TagsHandler.PREFIX + "*").handler(tags::handle).failureHandler(errors);
    router.route(StatusPage.PATH).method(HttpMethod.GET).method(HttpMethod.HEAD).handler(StatusPage::page)
        .failureHandler(errors);
    router.route(StatusPage.ASSETS + "*").method(HttpMethod.GET).method(HttpMethod.HEAD).handler(StatusPage::asset);
    router.get(StatusHandler.PATH).handler(status::handle).failureHandler(errors);
    for (String prefix : AdminGuard.PREFIXES) {
      router.route(prefix + "*").handler(admin).failureHandler(errors);
    }
    router.post(PrefetchHandler.PATH).handler(BodyHandler.create(false).setBodyLimit(PrefetchHandler.BODY_LIMIT))
        .handler(prefetch::submit).failureHandler(errors);
    router.get(PrefetchHandler.PATH + "/:id").handler(prefetch::status).failureHandler(errors);
    router.route(CacheAdminHandler.PREFIX + "*").handler(cacheAdmin::handle).failureHandler(errors);
    router.route().handler(ctx -> ctx.fail(OciError.NAME_UNKNOWN.exception("no such endpoint")))
        .failureHandler(errors);
    return router;
  }

  /** Whether the request comes from another replica of the cluster: it carries the cluster's secret. */
  private boolean fromReplica(RoutingContext ctx) {
    String secret = peers.secret();
    String marker = ctx.request().getHeader(PeerClient.HEADER);
    return secret != null && marker != null && MessageDigest.isEqual(
        secret.getBytes(StandardCharsets.UTF_8), marker.getBytes(StandardCharsets.UTF_8));
  }

  /** Stops re-reading the htpasswd file and sampling upstream answers. */
  public void close() {
    upstreamHealth.close();
    if (auth != null) {
      auth.close();
    }
  }

  /**
   * The decoded query: decoding happens once for all parameters, so a single malformed escape
   * anywhere makes the whole query unreadable, and the request is refused.
   */
  static MultiMap queryParams(RoutingContext ctx) {
    try {
      return ctx.request().params();
    } catch (IllegalArgumentException e) {
      throw OciError.NAME_INVALID.exception("the query string is not valid percent-encoding");
    }
  }

  private void distribution(RoutingContext ctx) {
    HttpMethod method = ctx.request().method();
    if (method != HttpMethod.GET && method != HttpMethod.HEAD) {
      throw OciError.UNSUPPORTED.exception("this is a read-only mirror: " + method + " is not supported")
          .withHeader("Allow", "GET, HEAD");
    }
    String path = ctx.request().path();
    if (path.equals("/v2/") || path.equals("/v2")) {
      // The version check: 200 to anyone who got past authentication, when there is any.
      ctx.json(new JsonObject());
      return;
    }
    String ns = queryParams(ctx).get("ns");
    boolean nsAsked = ns != null;
    String registry = registryWithPort(path);
    if (registry != null && (ns == null || ns.equals(registry))) {
      // registry.example:5000 is no repository name (':' is not allowed in one): it is taken
      // off the path and routed as ?ns= would be.
      ns = registry;
      path = "/v2/" + path.substring("/v2/".length() + registry.length() + 1);
    }
    ApiPath api = ApiPath.parse(path);
    ctx.put(ErrorHandler.KIND, api.endpoint());
    Target target = upstreams.route(ns, api.name());
    ctx.put(AccessLog.UPSTREAM, target.upstream().name());
    if (nsAsked) {
      ctx.response().putHeader(Headers.NAMESPACE, target.upstream().name());
    }
    if (api.endpoint() == Endpoint.MANIFEST || api.endpoint() == Endpoint.BLOB) {
      countServed(ctx);
    }
    switch (api.endpoint()) {
      case MANIFEST -> manifests.handle(ctx, target, api.reference());
      case BLOB -> blobs.handle(ctx, target, api.reference());
      case TAGS -> listings.tags(ctx, target, api.name());
      case REFERRERS -> listings.referrers(ctx, target, api.name(), api.reference());
    }
  }

  /**
   * Counts the body bytes a blob or manifest answer sent, whole or cut short, by where they came
   * from: the handlers say so in the cache-status header, which a miss sets to {@code miss}.
   */
  private void countServed(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    ctx.addEndHandler(ended -> {
      String cache = response.headers().get(Headers.CACHE_STATUS);
      long bytes = response.bytesWritten();
      if (cache != null && bytes > 0) {
        metrics.served(cache.equals(Result.MISS.label()) ? Source.UPSTREAM : Source.CACHE, bytes);
      }
    });
  }

  /** The first path component when it names a configured upstream with a port, else null. */
  private String registryWithPort(String path) {
    int start = "/v2/".length();
    int slash = path.indexOf('/', start);
    if (!path.startsWith("/v2/") || slash < 0) {
      return null;
    }
    String first = path.substring(start, slash);
    return first.indexOf(':') > 0 && upstreams.byName(first) != null ? first : null;
  }
}
