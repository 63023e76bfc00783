"""docs/spec.md §8.5's cost of a whole run (dana_jax.cost.run_cost, what a summary's "cost"
holds): a synchronous run against the hand count from its batch times, an asynchronous run
with links and failures against the reference's accounting of the reference's events
(tests/references/environment_s8.py), and worker-time to a time."""

from __future__ import annotations

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import data, models
from dana_jax.cost import COST_FIELDS, run_cost, worker_time_to
from dana_jax.environment import make_environment
from dana_jax.timing import TraceTiming
from tests.references import environment_s8 as ref
from tests.schedule.test_environment_events import reference

MLP = dj.flax_model(models.MLP((8,)), (8, 8))


def digits(n=256):
  x, y, _, _ = data.digits()
  return x[:n], y[:n]


def test_ssgd_cost_is_the_hand_count_of_its_rounds():
  # Worker i's j-th batch time; a round waits for its slowest worker.
  times = np.array([[3.0, 1.0, 2.0, 5.0], [1.0, 4.0, 2.0, 1.0], [2.0, 2.0, 6.0, 1.0]])
  x, y = digits()
  sim = dj.Simulator(MLP, "ssgd", x, y, num_workers=3, batch_size=8,
                     hyperparams=dj.Hyperparams(0.05, 0.0, 0.0), timing=TraceTiming(times))
  result = dj.simulate(sim, 4, chunk_steps=2, progress=False)
  got = run_cost(sim.spec, result.schedules[0])
  assert set(got) == set(COST_FIELDS)
  elapsed = times.max(axis=0).sum()  # 3 + 4 + 6 + 5
  assert got["elapsed"] == pytest.approx(elapsed)
  assert got["worker_time"] == pytest.approx(3 * elapsed)
  assert got["computing"] == pytest.approx(times.sum())
  assert got["idle_wait"] == pytest.approx(3 * elapsed - times.sum())
  assert got["idle"] == pytest.approx(3 * elapsed - times.sum())
  assert got["lost"] == got["communicating"] == got["idle_down"] == 0.0
  assert got["gradients_applied"] == got["gradients_computed"] == 12
  assert got["gradients_lost"] == got["gradients_discarded"] == 0
  assert got["goodput"] == pytest.approx(times.sum() / (3 * elapsed))
  # Bytes: each participant pulls θ_r and pushes its gradient, 4 bytes per float32 value.
  message = 4 * sim.spec.num_params
  assert got["bytes_pulled"] == got["bytes_pushed"] == pytest.approx(12 * message)
  # Over the first two rounds only.
  first = run_cost(sim.spec, result.schedules[0], num_steps=2)
  assert first["elapsed"] == pytest.approx(7.0)
  assert first["computing"] == pytest.approx(times[:, :2].sum())


@pytest.mark.parametrize("num_steps", [40, 25])
def test_async_cost_with_links_and_failures_is_the_reference_accounting(num_steps):
  n = 3
  env = make_environment(compute=dict(name="heterogeneous"),
                         links=dict(latency=[1.0, 2.0, 4.0], bandwidth=2e4,
                                    master_bandwidth=5e4),
                         availability=dict(name="up_down", mtbf=900.0, mttr=150.0))
  x, y = digits()
  sim = dj.Simulator(MLP, "nag", x, y, num_workers=n, batch_size=8,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 0.0), environment=env)
  result = dj.simulate(sim, 40, chunk_steps=20, progress=False)
  seed = int(sim.spec.timing_seeds[0])
  _events, jobs, down, links = reference(env.compute, n, num_steps, seed, env, sim.spec.num_params)
  got = run_cost(sim.spec, result.schedules[0], num_steps=num_steps)
  want = ref.run_cost(jobs, down, n, got["elapsed"], links.message_bytes)
  assert got["elapsed"] == pytest.approx(float(result.schedules[0].time[num_steps - 1]))
  for name, theirs in [("computing", "computing"), ("communicating", "communicating"),
                       ("lost", "lost"), ("idle_queue", "queue"), ("idle_down", "down"),
                       ("idle", "idle"), ("goodput", "goodput"),
                       ("gradients_computed", "gradients_computed"),
                       ("gradients_applied", "gradients_applied"),
                       ("gradients_lost", "gradients_lost"), ("bytes_pulled", "bytes_pulled"),
                       ("bytes_pushed", "bytes_pushed")]:
    assert got[name] == pytest.approx(want[theirs], rel=1e-9, abs=1e-9), name
  assert got["gradients_applied"] == num_steps
  assert got["idle_down"] > 0  # the case has failures in it


def test_worker_time_to_a_time_leaves_out_down_time():
  down = [np.array([[10.0, 20.0], [30.0, 50.0]]), np.zeros((0, 2))]
  assert worker_time_to(15.0, 2) == 30.0
  assert worker_time_to(15.0, 2, down) == 30.0 - 5.0
  assert worker_time_to(40.0, 2, down) == 80.0 - 10.0 - 10.0
  assert worker_time_to(5.0, 2, down) == 10.0
