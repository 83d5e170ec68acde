package io.registrymirror.concurrent;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Collapses concurrent calls for the same key into one: while a call is in flight, everyone
 * asking for that key shares its outcome. Nothing is cached once it completes.
 */
public final class SingleFlight<K, V> {

  private final Map<K, Future<V>> inFlight = new ConcurrentHashMap<>();

  public Future<V> run(K key, Supplier<Future<V>> call) {
    Promise<V> ours = Promise.promise();
    Future<V> shared = inFlight.computeIfAbsent(key, k -> ours.future());
    if (shared == ours.future()) {
      // Registered before anyone else can listen: the key is free again before waiters resume.
      shared.onComplete(r -> inFlight.remove(key, shared));
      Future<V> started;
      try {
        started = call.get();
      } catch (RuntimeException e) {
        started = Future.failedFuture(e);
      }
      started.onComplete(ours);
    }
    return onCallerContext(shared);
  }

  /**
   * Delivers a shared future's outcome on the caller's context. A future completed on another
   * event loop would otherwise run the caller's continuation, and so its request, on that loop.
   */
  public static <T> Future<T> onCallerContext(Future<T> shared) {
    Context caller = Vertx.currentContext();
    if (caller == null) {
      return shared;
    }
    Promise<T> local = Promise.promise();
    shared.onComplete(r -> caller.runOnContext(v -> local.handle(r)));
    return local.future();
  }
}
