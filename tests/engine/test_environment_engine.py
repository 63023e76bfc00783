"""docs/spec.md §8 in the engine: rounds shrunk by failures (a masked mean), failures and
rejoins as no-ops and restarts, against the literal references (tests/references/)."""

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import data, models
from dana_jax.environment import Environment
from tests.references.rounds_s6_0 import round_simulation
from tests.schedule.test_environment_rounds import FixedDown

MLP = dj.flax_model(models.MLP((16,)), (8, 8))


def digits_subset(n=320):
  x, y, _, _ = data.digits()
  return x[:n], y[:n]


@pytest.mark.parametrize("algorithm,wait", [("ssgd", False), ("ssgd", True),
                                            ("msync", False)])
def test_rounds_shrunk_by_failures_match_the_reference(algorithm, wait):
  x, y = digits_subset()
  down = FixedDown([[], [(100.0, 700.0)], [(300.0, 350.0), (900.0, 1000.0)]],
                   wait_for_all=wait)
  env = Environment(compute=dj.heterogeneous(), availability=down)
  g = 3 if algorithm == "ssgd" else 2
  sim = dj.Simulator(MLP, algorithm, x, y, num_workers=3, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), environment=env,
                     algorithm_options=None if algorithm == "ssgd" else {"num_gradients": 2})
  result = dj.simulate(sim, 10, chunk_steps=5, progress=False)
  rounds = result.schedules[0]
  counts = np.full(10, g) if rounds.gradients is None else rounds.gradients[:10]
  assert wait or counts.min() < g  # some round shrank
  params0, state0 = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  theta, _ = round_simulation(MLP, "ssgd" if g == 3 else "nag", x, y, num_rounds=10,
                              gradients_per_round=g,
                              batch_size=16, lr=lambda t: 0.05, momentum=0.9,
                              weight_decay=1e-3, seed=0, params0=params0, state0=state0,
                              counts=counts)
  np.testing.assert_allclose(np.asarray(ravel_pytree(result.state.params)[0]),
                             np.asarray(ravel_pytree(theta)[0]), rtol=2e-4, atol=2e-5)


# --- asynchronous methods: the §8 reference's events, then training along them ----------

SLOW = pytest.mark.slow


def environment(num_workers):
  """Every part on: per-worker links and a master queue, failures, straggler slowdowns."""
  from dana_jax.environment import make_environment
  n = num_workers
  return make_environment(
      compute=dict(name="heterogeneous"),
      links=dict(latency=[2.0 + i for i in range(n)], bandwidth=[2e3 * (1 + i % 3)
                                                                  for i in range(n)],
                 master_bandwidth=4e4),
      availability=dict(name="up_down", mtbf=900.0, mttr=200.0),
      speed=dict(name="straggler_chain", normal_time=700.0, slow_time=300.0, factor=3.0))


def reference_events(sim, num_steps, restart_rule=None, discard_rule=None, local_steps=1):
  from tests.references.environment_s8 import event_simulation
  spec, env = sim.spec, sim.spec.environment
  n, seed = spec.num_workers, spec.timing_seeds[0]
  draws = dj.schedule.WorkerDraws(env.compute, n, seed).upto(40 * num_steps)
  links = env.links.times(n, spec.num_params, seed)
  periods = env.availability.periods(n, seed)
  until = 1e3 * 128.0 * num_steps
  down = [periods.intervals(k, until).tolist() for k in range(n)]
  slowdowns = env.speed.slowdowns(n, seed)
  events, _ = event_simulation(draws, links.pull, links.push, links.handling, down,
                               slowdowns.factor, num_steps, restart_rule=restart_rule,
                               discard_rule=discard_rule, draws_per_job=local_steps,
                               down_until=until)
  return events


CASES = {  # algorithm: (options, reference algorithm, reference keywords)
    "nag": (None, "nag", {}),
    "ga": (None, "ga", {}),
    "dana_ga": (None, "dana_ga", {}),
    "ringmaster": ({"max_delay": 2}, "ringmaster", {}),
    "async_local_sgd": ({"local_steps": 2, "inner_learning_rate": 0.003}, "nag",
                        dict(local_steps=2, inner_lr=0.003, inner_weight_decay=1e-3)),
}


@pytest.mark.parametrize("algorithm,num_workers,execution", [
    ("dana_ga", 3, "blocks"), ("ringmaster", 3, "steps"), ("async_local_sgd", 3, "steps"),
    *[pytest.param(a, n, e, marks=SLOW) for a in CASES for n in (1, 3, 8)
      for e in ("steps", "blocks")
      if (a, n, e) not in {("dana_ga", 3, "blocks"), ("ringmaster", 3, "steps"),
                           ("async_local_sgd", 3, "steps")}]])
def test_async_methods_in_an_environment_match_the_reference(algorithm, num_workers,
                                                             execution):
  from tests.references.replay_s8 import replay_training
  options, ref_algorithm, ref_kwargs = CASES[algorithm]
  x, y = digits_subset()
  steps = 24
  sim = dj.Simulator(MLP, algorithm, x, y, num_workers=num_workers, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), execution=execution,
                     environment=environment(num_workers), algorithm_options=options)
  result = dj.simulate(sim, steps, chunk_steps=8, progress=False)
  rule = None
  if algorithm == "ringmaster":
    rule = lambda count, read: count - np.asarray(read) >= 2
  events = reference_events(sim, steps, restart_rule=rule,
                            local_steps=ref_kwargs.get("local_steps", 1))
  sched = result.schedules[0]
  got = list(zip(sched.event_kind.tolist(), sched.event_worker.tolist(),
                 sched.event_dispatch.tolist(), sched.event_step.tolist(), strict=True))
  assert got == [(e[0], e[1], e[3], e[4]) for e in events]
  np.testing.assert_allclose(sched.event_time, [e[2] for e in events], rtol=1e-12)
  np.testing.assert_array_equal(sched.lag, [e[5] for e in events if e[0] == 0])
  if num_workers > 1:
    assert sched.num_failures > 0
  params0, state0 = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  theta, _ = replay_training(MLP, ref_algorithm, x, y, events, num_workers=num_workers,
                             batch_size=16, lr=lambda t: 0.05, momentum=0.9,
                             weight_decay=0.0 if algorithm == "async_local_sgd" else 1e-3,
                             seed=0, params0=params0, state0=state0, **ref_kwargs)
  np.testing.assert_allclose(np.asarray(ravel_pytree(result.state.params)[0]),
                             np.asarray(ravel_pytree(theta)[0]), rtol=2e-4, atol=2e-5)
