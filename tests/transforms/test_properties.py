"""Property tests (hypothesis) of the schedule and of the staleness penalties.

For random timing models, N and T: each worker's arrivals happen at the
cumulative sums of its own batch times and in time order, every lag is the
number of master steps since that worker's previous arrival (docs/spec.md §1), and
blocks partition the steps without repeating a worker. For random gradients,
parameters and lags: SA and GA never amplify a gradient (divisor ≥ 1).
"""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dana_jax import schedule as S
from dana_jax import timing as TM
from dana_jax import transforms as T

timings = st.one_of(
    st.builds(TM.homogeneous, mean=st.floats(0.1, 10.0), shape=st.floats(0.5, 300.0)),
    st.builds(TM.heterogeneous, mean=st.floats(0.1, 10.0), shape=st.floats(0.5, 10.0)),
    st.just(TM.ConstantTiming()),
)


@settings(max_examples=60, deadline=None)
@given(timing=timings, num_workers=st.integers(1, 40), num_steps=st.integers(1, 300),
       seed=st.integers(0, 2**31 - 1), block_size=st.integers(1, 48),
       boundaries=st.lists(st.integers(1, 299), max_size=4))
def test_schedule_lags_follow_arrival_order_and_blocks_partition(
    timing, num_workers, num_steps, seed, block_size, boundaries):
  boundaries = sorted({b for b in boundaries if b < num_steps})
  sched = S.make_schedule(timing, num_workers, num_steps, seed=seed, block_size=block_size,
                          boundaries=boundaries)
  assert np.all(np.diff(sched.time) >= 0)  # master steps in order of arrival
  # Worker k's j-th arrival ends its j-th batch: the cumulative sum of its own times.
  times = timing.draw(timing.worker_streams(num_workers, seed), 0, num_steps)
  last_read = np.zeros(num_workers, np.int64)
  arrivals = np.zeros(num_workers, np.int64)
  for t, (k, lag) in enumerate(zip(sched.worker, sched.lag, strict=True)):
    arrivals[k] += 1
    np.testing.assert_allclose(sched.time[t], np.sum(times[k, :arrivals[k]]), rtol=1e-12)
    assert lag == t - last_read[k]  # steps since it read (at its previous arrival, or 0)
    last_read[k] = t + 1
  starts = sched.block_starts
  assert starts[0] == 0 and starts[-1] == num_steps and np.all(np.diff(starts) >= 1)
  assert set(boundaries) <= set(starts.tolist())
  for a, b in zip(starts[:-1], starts[1:], strict=True):
    assert b - a <= block_size
    assert len(set(sched.worker[a:b].tolist())) == b - a  # no worker twice in a block


@settings(max_examples=40, deadline=None)
@given(lags=st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
       seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-6, 1e3),
       learning_rate=st.floats(1e-4, 10.0), beta=st.floats(0.0, 0.9999),
       penalty=st.sampled_from(["one_plus", "max"]), per_tensor=st.booleans())
def test_sa_and_ga_never_amplify_a_gradient(lags, seed, scale, learning_rate, beta, penalty,
                                            per_tensor):
  rng = np.random.default_rng(seed)
  draw = lambda: {"w": jnp.asarray(scale * rng.normal(size=(3, 4)), jnp.float32),
                  "b": jnp.asarray(scale * rng.normal(size=5), jnp.float32)}
  params = draw()
  sa = T.scale_by_staleness()
  ga = T.scale_by_gap_aware(learning_rate, beta=beta, penalty=penalty, per_tensor=per_tensor)
  sa_state, ga_state = sa.init(params), ga.init(params)
  for lag in lags:
    grads, stale, buffer = draw(), draw(), draw()
    out, sa_state = sa.update(grads, sa_state, lag=lag)
    for g, o in zip(jax_leaves(grads), jax_leaves(out), strict=True):
      assert np.all(np.abs(o) <= np.abs(g) * (1 + 1e-6))
    out, ga_state = ga.update(grads, ga_state, params, stale_params=stale,
                              momentum_buffer=buffer)
    for g, o in zip(jax_leaves(grads), jax_leaves(out), strict=True):
      assert np.all(np.abs(o) <= np.abs(g) * (1 + 1e-6))
    assert float(ga_state.mean_penalty) >= 1.0 - 1e-6


def jax_leaves(tree):
  return [np.asarray(tree[k]) for k in sorted(tree)]
