package io.registrymirror.upstream;

import io.vertx.core.Future;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Collapses concurrent calls for the same key into one: while a call is in flight, everyone
 * asking for that key shares its future. Nothing is cached once it completes.
 */
public final class SingleFlight<K, V> {

  private final Map<K, Future<V>> inFlight = new ConcurrentHashMap<>();

  public Future<V> run(K key, Supplier<Future<V>> call) {
    Future<V>[] created = new Future[1];
    Future<V> shared = inFlight.computeIfAbsent(key, k -> created[0] = call.get());
    if (shared == created[0]) {
      // Registered only after computeIfAbsent returns: an already-completed future would
      // otherwise try to remove itself while the map is still inserting it.
      shared.onComplete(r -> inFlight.remove(key, shared));
    }
    return shared;
  }

  public Future<V> get(K key) {
    return inFlight.get(key);
  }
}
