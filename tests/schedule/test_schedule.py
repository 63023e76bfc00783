"""Schedule: arrival order, lags, blocks and the speedup model (docs/spec.md §1)."""

import heapq

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import schedule as S
from dana_jax.errors import ConfigError
from dana_jax.timing import JobTiming


def heap_order(batch_times, num_steps):
  """Reference: pop completions from a heap, ties to the lower worker id."""
  n = batch_times.shape[0]
  heap = [(batch_times[i, 0], i, 0) for i in range(n)]
  heapq.heapify(heap)
  read = [0] * n
  workers, lags, times = [], [], []
  for t in range(num_steps):
    c, k, j = heapq.heappop(heap)
    workers.append(k)
    lags.append(t - read[k])
    times.append(c)
    read[k] = t + 1
    heapq.heappush(heap, (c + batch_times[k, j + 1], k, j + 1))
  return np.array(workers), np.array(lags), np.array(times)


@pytest.mark.parametrize("timing", [dj.homogeneous(), dj.heterogeneous(),
                                    dj.heterogeneous(worker_speed_shape=5.0),
                                    dj.ConstantTiming()])
@pytest.mark.parametrize("num_workers", [1, 3, 8])
def test_schedule_matches_heap_simulation(timing, num_workers):
  steps = 400
  sched = S.make_schedule(timing, num_workers, steps, seed=3)
  times = timing.draw(timing.worker_streams(num_workers, 3), 0, steps + 2)
  workers, lags, done = heap_order(times, steps)
  np.testing.assert_array_equal(sched.worker, workers)
  np.testing.assert_array_equal(sched.lag, lags)
  np.testing.assert_allclose(sched.time, done, rtol=1e-12)


@pytest.mark.parametrize("num_workers", [2, 8, 32])
@pytest.mark.parametrize("timing", [dj.homogeneous(), dj.heterogeneous()])
def test_mean_lag_is_n_minus_one(timing, num_workers):
  sched = S.make_schedule(timing, num_workers, 200 * num_workers, seed=0)
  steady = sched.lag[5 * num_workers:]
  assert abs(steady.mean() - (num_workers - 1)) < 0.02 * num_workers + 0.02


def test_constant_timing_is_round_robin():
  sched = S.make_schedule(dj.ConstantTiming(), 5, 23)
  np.testing.assert_array_equal(sched.worker, np.arange(23) % 5)
  assert np.all(sched.lag[5:] == 4)
  np.testing.assert_array_equal(sched.lag[:5], np.arange(5))


def test_trace_timing_and_repeated_worker():
  times = np.ones((3, 50)) * 10.0
  times[0] = 1.0  # worker 0 is ten times faster: it arrives many times in a row
  sched = S.make_schedule(dj.TraceTiming(times), 3, 30, block_size=3)
  assert np.any(sched.worker[1:] == sched.worker[:-1])
  workers, lags, _ = heap_order(times, 30)
  np.testing.assert_array_equal(sched.worker, workers)
  np.testing.assert_array_equal(sched.lag, lags)


@pytest.mark.parametrize("block_size", [1, 3, 8, 100])
@pytest.mark.parametrize("timing", [dj.homogeneous(), dj.heterogeneous(shape=1.0)])
def test_blocks_partition_steps_without_repeating_a_worker(timing, block_size):
  sched = S.make_schedule(timing, 8, 500, seed=1, block_size=block_size, boundaries=[123, 400])
  starts = sched.block_starts
  assert starts[0] == 0 and starts[-1] == 500 and np.all(np.diff(starts) >= 1)
  assert 123 in starts and 400 in starts
  covered = np.concatenate([np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])])
  np.testing.assert_array_equal(covered, np.arange(500))
  for a, b in zip(starts[:-1], starts[1:]):
    assert b - a <= block_size
    assert len(set(sched.worker[a:b])) == b - a
  steps, mask = sched.padded_blocks()
  assert steps.shape == (sched.num_blocks, block_size)
  np.testing.assert_array_equal(np.sort(steps[mask]), np.arange(500))


def test_schedule_is_a_prefix_of_a_longer_one():
  short = S.make_schedule(dj.heterogeneous(), 6, 100, seed=9)
  long = S.make_schedule(dj.heterogeneous(), 6, 1000, seed=9)
  np.testing.assert_array_equal(short.worker, long.worker[:100])
  np.testing.assert_array_equal(short.time, long.time[:100])


def test_ssgd_speedup_matches_spec_within_one_percent():
  spec = {4: 3.62, 8: 6.98, 16: 13.51, 32: 26.26, 64: 51.2, 128: 100.1}
  est = S.estimate_speedup(dj.homogeneous(), list(spec), num_runs=2, num_iterations=20_000)
  for n, asgd, ssgd in zip(est["num_workers"], est["asgd"], est["ssgd"]):
    assert abs(ssgd / spec[int(n)] - 1) < 0.01, (n, ssgd)
    assert abs(asgd / n - 1) < 0.01, (n, asgd)


def test_synchronous_times_are_cumulative_maxima():
  timing = dj.heterogeneous()
  times = timing.draw(timing.worker_streams(4, 2), 0, 10)
  np.testing.assert_allclose(S.synchronous_times(timing, 4, 10, seed=2),
                             np.cumsum(times.max(0)))


# --- A trace is asked for exactly the batch times a run uses ----------------------------

# (name, N, batch times per job, schedule of a timing model)
FAMILIES = [
    ("async", 3, 1, lambda t: S.make_schedule(t, 3, 60)),
    ("async, N = 1", 1, 1, lambda t: S.make_schedule(t, 1, 96)),
    ("restarts", 4, 1, lambda t: S.make_schedule(t, 4, 60,
                                                 restart_rule=S.RestartAtDelay(2))),
    ("discards", 4, 1, lambda t: S.make_schedule(t, 4, 60,
                                                 discard_rule=S.DiscardAtDelay(2))),
    ("ssgd", 3, 1, lambda t: S.make_rounds(t, 3, 40)),
    ("msync", 4, 1, lambda t: S.make_rounds(t, 4, 40, rule=S.FastestRule(2, 4))),
    ("rennala", 3, 1, lambda t: S.make_rounds(t, 3, 40, rule=S.RennalaRule(5))),
    ("rennala, N = 1", 1, 1, lambda t: S.make_rounds(t, 1, 40, rule=S.RennalaRule(3))),
    ("local SGD, H = 3", 3, 3, lambda t: S.make_schedule(JobTiming(t, 3), 3, 40)),
    ("DyLU", 3, np.array([3, 2, 1]),
     lambda t: S.make_schedule(JobTiming(t, (3, 2, 1)), 3, 40)),
]
FIELDS = ("worker", "lag", "time", "event_kind", "event_worker", "event_time", "cancelled")


@pytest.mark.parametrize("family", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_trace_of_exactly_the_batch_times_a_run_uses_is_enough(family):
  _, n, per_job, make = family
  trace = dj.heterogeneous().draw(dj.heterogeneous().worker_streams(n, 4), 0, 3000)
  full = make(dj.TraceTiming(trace))
  need = int(np.max(full.jobs_used * per_job))
  exact = make(dj.TraceTiming(trace[:, :need]))
  for field in FIELDS:
    if hasattr(full, field):
      np.testing.assert_array_equal(getattr(exact, field), getattr(full, field), field)
  np.testing.assert_array_equal(exact.jobs_used, full.jobs_used)
  with pytest.raises(ConfigError, match=rf"^timing.batch_times=<a {n} × {need - 1} trace> is "
                     rf"not allowed: the run needs at least {need} batch times of worker"):
    make(dj.TraceTiming(trace[:, :need - 1]))


def heap_jobs_used(batch_times, num_steps):
  """Reference: the jobs of each worker that start before the last of the first
  ``num_steps`` completions (a heap of completions, ties to the lower id)."""
  n = batch_times.shape[0]
  heap = [(batch_times[i, 0], i, 0, 0.0) for i in range(n)]
  heapq.heapify(heap)
  starts = [[0.0] for _ in range(n)]
  for _ in range(num_steps):
    done, k, j, _ = heapq.heappop(heap)
    heapq.heappush(heap, (done + batch_times[k, j + 1], k, j + 1, done))
    starts[k].append(done)
  return np.asarray([sum(s < done for s in starts[i]) for i in range(n)])


@pytest.mark.parametrize("timing", [dj.heterogeneous(), dj.ConstantTiming()])
@pytest.mark.parametrize("num_workers", [1, 3, 8])
def test_jobs_used_are_those_that_start_before_the_end(timing, num_workers):
  times = timing.draw(timing.worker_streams(num_workers, 2), 0, 300)
  sched = S.make_schedule(dj.TraceTiming(times), num_workers, 250)
  np.testing.assert_array_equal(sched.jobs_used, heap_jobs_used(times, 250))


def test_the_runs_of_the_issue_need_what_they_use():
  # NAG, N = 1, 96 steps: 96 batch times (not 128); Rennala S = 3, N = 1: 3 per round.
  assert S.make_schedule(dj.TraceTiming(np.ones((1, 96))), 1, 96).jobs_used.tolist() == [96]
  ren = S.make_rounds(dj.TraceTiming(np.ones((1, 3 * 128))), 1, 128, rule=S.RennalaRule(3))
  assert ren.jobs_used.tolist() == [3 * 128]


def test_simulator_checks_a_trace_before_simulating(tmp_path):
  from dana_jax import data, models
  x, y, _, _ = data.digits()
  model = dj.flax_model(models.MLP((8,)), (8, 8))
  make = lambda trace, **kw: dj.Simulator(model, "async_local_sgd", x[:320], y[:320],
                                          num_workers=2, batch_size=16, seeds=[0, 1],
                                          timing=dj.TraceTiming(trace), **kw)
  rows = dj.check_timing(make(np.ones((2, 40)), algorithm_options={"local_steps": 2}).spec, 30)
  assert [r.tolist() for r in rows] == [[30, 30], [30, 30]]  # 15 jobs of 2 each
  with pytest.raises(ConfigError, match="needs at least 30 batch times of worker 0"):
    dj.check_timing(make(np.ones((2, 29)), algorithm_options={"local_steps": 2}).spec, 30)


def test_an_experiment_refuses_a_short_trace_in_one_line_before_writing(tmp_path):
  from experiments import main
  trace = tmp_path / "trace.npy"
  np.save(trace, np.full((2, 5), 128.0))
  with pytest.raises(SystemExit) as exit_:
    main.run("digits", ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
                        "--config.epochs=1", "--config.baseline=", "--config.timing=trace",
                        f"--config.timing.batch_times={trace}", f"--workdir={tmp_path / 'runs'}"])
  message = str(exit_.value.code)
  assert message.startswith("error: config.timing: ") and "\n" not in message, message
  assert "timing.batch_times=<a 2 × 5 trace> is not allowed: the run needs at least" in message
  assert not (tmp_path / "runs").exists()
