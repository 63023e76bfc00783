"""docs/spec.md §6.0 events (restarts, synchronous rounds) and worker programs, against a literal
one-event-at-a-time reference (tests/references/)."""

import dataclasses
import functools

import jax
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import data, models
from dana_jax import schedule as S
from tests.references.environment_s1 import event_simulation
from tests.references.rounds_s6_0 import round_simulation

MLP = dj.flax_model(models.MLP((16,)), (8, 8))


@functools.cache
def digits_subset(n=320):
  x, y, _, _ = data.digits()
  return x[:n], y[:n]


def flat(tree):
  return np.asarray(ravel_pytree(tree)[0])


def restart_at_lag(max_lag):
  """Test-only rule: restart every worker whose job reached lag ``max_lag`` (as Ringmaster)."""
  return lambda step_count, read_step: step_count - read_step >= max_lag


def lr(t):
  return 0.05 * (0.1 if t >= 25 else 1.0)


def engine(algorithm, *, num_workers, steps, execution="steps", block_size=None, seeds=0,
           momentum=0.9, weight_decay=1e-3, **kwargs):
  x, y = digits_subset()
  sim = dj.Simulator(MLP, algorithm, x, y, num_workers=num_workers, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, momentum, weight_decay),
                     learning_rate_schedule=lambda b: lambda t: b * jax.numpy.where(
                         jax.numpy.asarray(t) >= 25, 0.1, 1.0),
                     timing=dj.heterogeneous(), execution=execution, block_size=block_size,
                     seeds=seeds, **kwargs)
  return dj.simulate(sim, steps, chunk_steps=15, progress=False)


def reference(algorithm, *, num_workers, steps, momentum=0.9, weight_decay=1e-3, jobs=60,
              local_steps=1, **kwargs):
  x, y = digits_subset()
  timing = dj.heterogeneous()
  times = timing.draw(timing.worker_streams(num_workers, 0), 0, jobs * local_steps)
  params0, state0 = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  return event_simulation(MLP, algorithm, x, y, batch_times=times, num_steps=steps,
                             num_workers=num_workers, batch_size=16, lr=lr,
                             momentum=momentum, weight_decay=weight_decay, seed=0,
                             params0=params0, state0=state0, local_steps=local_steps,
                             **kwargs)


SLOW = pytest.mark.slow  # the other combinations, each ~10 s on 2 cores: run with -m slow


@pytest.mark.parametrize("algorithm,num_workers,execution", [
    ("nag", 3, "steps"), ("nag", 8, "blocks"), ("dana_ga", 8, "steps"),
    ("dana_ga", 3, "blocks"),
    *[pytest.param(a, n, e, marks=SLOW) for a, n, e in [
        ("nag", 1, "steps"), ("nag", 1, "blocks"), ("nag", 3, "blocks"), ("nag", 8, "steps"),
        ("dana_ga", 1, "steps"), ("dana_ga", 1, "blocks"), ("dana_ga", 3, "steps"),
        ("dana_ga", 8, "blocks")]]])
def test_restart_events_match_the_reference(algorithm, num_workers, execution):
  rule = restart_at_lag(max(1, num_workers // 2))
  result = engine(algorithm, num_workers=num_workers, steps=40, execution=execution,
                  restart_rule=rule)
  theta, _, events = reference(algorithm, num_workers=num_workers, steps=40,
                               restart_rule=rule)
  sched = result.schedules[0]
  kinds = ["apply" if k == S.APPLY else "restart" for k in sched.event_kind]
  assert list(zip(kinds, sched.event_worker.tolist(), strict=True)) == [e[:2] for e in events]
  np.testing.assert_array_equal(sched.lag, [e[2] for e in events if e[0] == "apply"])
  if num_workers > 1:
    assert sched.num_restarts > 0 and np.all(sched.lag < max(1, num_workers // 2))
  np.testing.assert_allclose(flat(result.state.params), flat(theta), rtol=2e-4, atol=2e-5)


def test_a_rule_that_never_fires_gives_the_plain_schedule():
  timing = dj.heterogeneous()
  plain = S.make_schedule(timing, 6, 300, seed=4, block_size=4, boundaries=[100])
  ruled = S.make_schedule(timing, 6, 300, seed=4, block_size=4, boundaries=[100],
                          restart_rule=restart_at_lag(10_000))
  for field in ("worker", "lag", "time", "event_dispatch", "block_starts"):
    np.testing.assert_array_equal(getattr(plain, field), getattr(ruled, field), err_msg=field)


def test_restarted_jobs_keep_their_batch_and_every_batch_is_applied_once():
  sched = S.make_schedule(dj.heterogeneous(), 8, 400, seed=1, restart_rule=restart_at_lag(3))
  applied = sched.event_dispatch[sched.event_kind == S.APPLY]
  assert sched.num_restarts > 50
  assert len(set(applied.tolist())) == 400  # no batch twice
  assert set(applied.tolist()) <= set(range(400 + 8))


def test_restart_replicas_equal_runs_made_alone():
  rule = restart_at_lag(3)
  both = engine("dana_ga", num_workers=6, steps=30, execution="blocks", block_size=4,
                seeds=[0, 1], restart_rule=rule)
  alone = engine("dana_ga", num_workers=6, steps=30, execution="blocks", block_size=4,
                 seeds=1, restart_rule=rule)
  np.testing.assert_allclose(flat(dj.replica(both.state, 1).params),
                             flat(alone.state.params), rtol=1e-5, atol=1e-6)


@dataclasses.dataclass(frozen=True)
class FastestOf:
  """Test-only round rule: the m earliest of one draw per worker; a round lasts the m-th."""

  m: int

  def gradients(self, num_workers):
    return self.m

  def durations(self, timing, streams, num_workers, num_rounds):
    return np.sort(timing.draw(streams, 0, num_rounds), axis=0)[self.m - 1]


@pytest.mark.parametrize("rule,num_workers", [(None, 4), (FastestOf(3), 8),
                                               pytest.param(FastestOf(2), 3, marks=SLOW)])
def test_rounds_match_the_reference(rule, num_workers):
  x, y = digits_subset()
  sim = dj.Simulator(MLP, "ssgd", x, y, num_workers=num_workers, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), timing=dj.heterogeneous(),
                     round_rule=rule)
  result = dj.simulate(sim, 12, chunk_steps=5, progress=False)
  g = num_workers if rule is None else rule.m
  params0, state0 = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  theta, _ = round_simulation(MLP, "ssgd", x, y, num_rounds=12, gradients_per_round=g,
                              batch_size=16, lr=lambda t: 0.05, momentum=0.9,
                              weight_decay=1e-3, seed=0, params0=params0, state0=state0)
  np.testing.assert_allclose(flat(result.state.params), flat(theta), rtol=2e-4, atol=2e-5)
  draws = dj.heterogeneous().draw(dj.heterogeneous().worker_streams(num_workers, 0), 0, 12)
  ends = np.cumsum([sorted(draws[:, r])[g - 1] for r in range(12)])
  np.testing.assert_allclose([h["replicas"][0]["time/simulated"] for h in result.history],
                             ends[[4, 9, 11]], rtol=1e-12)


def test_ssgd_counts_gradients_not_floored_rounds_per_epoch():
  x, y, _, _ = data.digits()
  sim = dj.Simulator(MLP, "ssgd", x, y, num_workers=32, batch_size=32)
  per_epoch = x.shape[0] // 32  # 46 batches of the stream per epoch
  assert sim.spec.steps_for_epochs(4) == (4 * per_epoch) // 32 == 5  # not 4 × floor(46 / 32)
  result = dj.simulate(sim, sim.spec.steps_for_epochs(4), progress=False)
  # Epoch e ends with the round in which gradient e·S falls: rounds 2, 3, 5 (and 5).
  assert [h["step"] for h in result.history] == [2, 3, 5]


def test_local_steps_match_the_reference():
  inner = optax.sgd(0.02, momentum=0.5)
  result = engine("nag", num_workers=3, steps=20,
                  worker_program=dj.engine.LocalSteps(3, inner))
  theta, _, _ = reference("nag", num_workers=3, steps=20, local_steps=3, inner_lr=0.02,
                          inner_momentum=0.5, jobs=60)
  np.testing.assert_allclose(flat(result.state.params), flat(theta), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("execution", ["blocks", pytest.param("steps", marks=SLOW)])
def test_one_local_sgd_step_at_rate_one_is_one_gradient(execution):
  one = engine("nag", num_workers=3, steps=20, execution=execution, weight_decay=0.0,
               worker_program=dj.engine.LocalSteps(1, optax.sgd(1.0)))
  grad = engine("nag", num_workers=3, steps=20, execution=execution, weight_decay=0.0)
  np.testing.assert_allclose(flat(one.state.params), flat(grad.state.params), rtol=1e-5,
                             atol=1e-6)
