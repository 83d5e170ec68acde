package io.registrymirror.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.registrymirror.error.OciError;
import io.registrymirror.error.RegistryException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The body budget: what fits is granted, what does not waits its turn briefly, then is refused cleanly. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BodyBudgetTest {

  private static final long LIMIT = 1000;

  private Vertx vertx;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get();
  }

  @Test
  void aWaitingReservationIsGrantedWhenBytesAreReleasedInOrder() throws Exception {
    BodyBudget budget = new BodyBudget(vertx, LIMIT, Duration.ofSeconds(20));
    BodyBudget.Lease first = get(budget.reserve(600));
    Future<BodyBudget.Lease> second = budget.reserve(600);
    // Fits, but must not overtake the one waiting before it.
    Future<BodyBudget.Lease> third = budget.reserve(100);
    assertThat(second.isComplete()).isFalse();
    assertThat(third.isComplete()).isFalse();
    assertThat(budget.used()).isEqualTo(600);

    first.release();
    first.release();
    get(second);
    get(third);
    assertThat(budget.used()).isEqualTo(700);
  }

  @Test
  void aReservationThatWaitsTooLongGets503WithRetryAfter() {
    BodyBudget budget = new BodyBudget(vertx, LIMIT, Duration.ofMillis(100));
    budget.reserve(LIMIT);
    assertThatThrownBy(() -> get(budget.reserve(1)))
        .cause().isInstanceOfSatisfying(RegistryException.class, e -> {
          assertThat(e.error()).isEqualTo(OciError.UNAVAILABLE);
          assertThat(e.headers().get("Retry-After")).isEqualTo("1");
        });
    assertThat(budget.used()).isEqualTo(LIMIT);
  }

  @Test
  void moreThanTheWholeBudgetIsRefusedAtOnce() {
    BodyBudget budget = new BodyBudget(vertx, LIMIT, Duration.ofSeconds(20));
    assertThat(budget.reserve(LIMIT + 1).failed()).isTrue();
    assertThat(budget.used()).isZero();
  }

  @Test
  void aGrowingLeaseFailsAtOnceWhenTheBudgetIsSpentAndGivesBackWhatItHeld() throws Exception {
    BodyBudget budget = new BodyBudget(vertx, LIMIT, Duration.ofSeconds(20));
    BodyBudget.Lease other = get(budget.reserve(500));
    BodyBudget.Lease growing = get(budget.reserve(0));
    growing.grow(400);
    assertThatThrownBy(() -> growing.grow(200)).isInstanceOf(RegistryException.class);
    assertThat(budget.used()).isEqualTo(900);
    growing.release();
    other.release();
    assertThat(budget.used()).isZero();
  }

  @Test
  void withinReleasesWhenTheWorkCompletesEvenIfItFails() throws Exception {
    BodyBudget budget = new BodyBudget(vertx, LIMIT, Duration.ofSeconds(20));
    long heldWithin = get(budget.within(300, lease -> Future.succeededFuture(budget.used())));
    assertThat(heldWithin).isEqualTo(300L);
    assertThatThrownBy(() -> get(budget.within(300, lease -> {
      throw new IllegalStateException("broken");
    }))).hasRootCauseInstanceOf(IllegalStateException.class);
    assertThat(budget.used()).isZero();
  }

  private static <T> T get(Future<T> f) throws ExecutionException, InterruptedException {
    return f.toCompletionStage().toCompletableFuture().get();
  }
}
