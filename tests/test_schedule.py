"""Schedule: arrival order, lags, blocks and the speedup model (SPEC §1)."""

import heapq

import numpy as np
import pytest

from dana_jax import schedule as S


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


@pytest.mark.parametrize("timing", [S.homogeneous(), S.heterogeneous(),
                                    S.heterogeneous(worker_speed_shape=5.0),
                                    S.ConstantTiming()])
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
@pytest.mark.parametrize("timing", [S.homogeneous(), S.heterogeneous()])
def test_mean_lag_is_n_minus_one(timing, num_workers):
  sched = S.make_schedule(timing, num_workers, 200 * num_workers, seed=0)
  steady = sched.lag[5 * num_workers:]
  assert abs(steady.mean() - (num_workers - 1)) < 0.02 * num_workers + 0.02


def test_constant_timing_is_round_robin():
  sched = S.make_schedule(S.ConstantTiming(), 5, 23)
  np.testing.assert_array_equal(sched.worker, np.arange(23) % 5)
  assert np.all(sched.lag[5:] == 4)
  np.testing.assert_array_equal(sched.lag[:5], np.arange(5))


def test_trace_timing_and_repeated_worker():
  times = np.ones((3, 50)) * 10.0
  times[0] = 1.0  # worker 0 is ten times faster: it arrives many times in a row
  sched = S.make_schedule(S.TraceTiming(times), 3, 30, block_size=3)
  assert np.any(sched.worker[1:] == sched.worker[:-1])
  workers, lags, _ = heap_order(times, 30)
  np.testing.assert_array_equal(sched.worker, workers)
  np.testing.assert_array_equal(sched.lag, lags)


@pytest.mark.parametrize("block_size", [1, 3, 8, 100])
@pytest.mark.parametrize("timing", [S.homogeneous(), S.heterogeneous(shape=1.0)])
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
  short = S.make_schedule(S.heterogeneous(), 6, 100, seed=9)
  long = S.make_schedule(S.heterogeneous(), 6, 1000, seed=9)
  np.testing.assert_array_equal(short.worker, long.worker[:100])
  np.testing.assert_array_equal(short.time, long.time[:100])


def test_ssgd_speedup_matches_spec_within_one_percent():
  spec = {4: 3.62, 8: 6.98, 16: 13.51, 32: 26.26, 64: 51.2, 128: 100.1}
  est = S.estimate_speedup(S.homogeneous(), list(spec), num_runs=2, num_iterations=20_000)
  for n, asgd, ssgd in zip(est["num_workers"], est["asgd"], est["ssgd"]):
    assert abs(ssgd / spec[int(n)] - 1) < 0.01, (n, ssgd)
    assert abs(asgd / n - 1) < 0.01, (n, asgd)


def test_synchronous_times_are_cumulative_maxima():
  timing = S.heterogeneous()
  times = timing.draw(timing.worker_streams(4, 2), 0, 10)
  np.testing.assert_allclose(S.synchronous_times(timing, 4, 10, seed=2),
                             np.cumsum(times.max(0)))
