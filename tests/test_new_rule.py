"""A new staleness rule is one transform plus one registry entry (README, "Where to add
things"): a toy rule added through exactly those two places runs through the public
Simulator and gives the numbers of a one-event-at-a-time numpy transcription of it."""

import contextlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import dana_jax as dj

# --- the transform (what would be one file in dana_jax/transforms/) ---------------------


class ScaleByInverseLagState(NamedTuple):
  """No state; a NamedTuple so the chain's state has a type of its own."""


def scale_by_inverse_lag() -> optax.GradientTransformationExtraArgs:
  """Divides the updates by 1 + τ (τ: the gradient's lag, an extra arg)."""

  def init_fn(params):
    del params
    return ScaleByInverseLagState()

  def update_fn(updates, state, params=None, *, lag=None, **extra_args):
    del params, extra_args
    scale = 1.0 / (1.0 + jnp.asarray(lag, jnp.float32))
    return jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# --- the registry entry (what would be one Algorithm in dana_jax/algorithms.py) ---------


def _build(learning_rate, momentum, weight_decay, num_workers):
  del momentum, weight_decay, num_workers
  return optax.chain(scale_by_inverse_lag(), optax.scale_by_learning_rate(learning_rate))


TOY = dj.Algorithm("toy_inverse_lag", _build, colour="#123456",
                   description="toy: d / (1 + τ), then plain SGD")


@contextlib.contextmanager
def registered(algorithm):
  """``algorithm`` in :data:`dana_jax.ALGORITHMS` (last, so last in display order) while
  the block runs."""
  assert algorithm.name not in dj.ALGORITHMS
  dj.ALGORITHMS[algorithm.name] = algorithm
  try:
    yield algorithm
  finally:
    del dj.ALGORITHMS[algorithm.name]


# --- a linear least-squares model, trained on the full batch ----------------------------

NUM_EXAMPLES, DIM, NUM_WORKERS, NUM_STEPS, LR = 32, 4, 4, 30, 0.2


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(NUM_EXAMPLES, DIM)).astype(np.float32)
  y = (x @ np.arange(1.0, DIM + 1.0) + 0.1 * rng.normal(size=NUM_EXAMPLES)).astype(np.float32)
  return x, y


def _model():
  def loss(params, inputs, labels, key):
    del key
    return 0.5 * jnp.mean(jnp.square(inputs @ params["w"] - labels)), {}

  def predict(params, model_state, inputs):
    del model_state
    return inputs @ params["w"]

  return dj.Model(init=lambda key: ({"w": jnp.zeros(DIM, jnp.float32)}, {}), loss=loss,
                  fold=lambda state, contribution: state, predict=predict,
                  metrics=lambda outputs, labels: {"loss": 0.5 * jnp.square(outputs - labels)})


def _numpy_loop(x, y, schedule):
  """The toy rule one event at a time (docs/spec.md §1): worker k_t's gradient, at the
  θ it read, applied as θ ← θ − η g / (1 + τ_t); k_t then reads θ."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  theta = np.zeros(DIM)
  read = [theta.copy() for _ in range(NUM_WORKERS)]
  for k, lag in zip(schedule.worker, schedule.lag, strict=True):
    g = x.T @ (x @ read[k] - y) / len(y)  # the full batch: every dispatch's batch
    theta = theta - LR * g / (1.0 + lag)
    read[k] = theta.copy()
  return theta


def test_a_rule_added_by_a_transform_and_a_registry_entry_runs_exactly():
  x, y = _data()
  timing = dj.heterogeneous()
  with registered(TOY):
    assert list(dj.ALGORITHMS)[-1] == "toy_inverse_lag"  # its display place
    assert dj.get_algorithm("toy_inverse_lag").colour == "#123456"
    sim = dj.Simulator(_model(), "toy_inverse_lag", x, y, num_workers=NUM_WORKERS,
                       batch_size=NUM_EXAMPLES, hyperparams=dj.Hyperparams(LR, 0.0, 0.0),
                       timing=timing, seeds=0)
    result = dj.simulate(sim, NUM_STEPS, progress=False)
  assert "toy_inverse_lag" not in dj.ALGORITHMS
  schedule = dj.make_schedule(timing, NUM_WORKERS, NUM_STEPS, seed=0)
  np.testing.assert_array_equal(result.schedules[0].worker, schedule.worker)
  np.testing.assert_array_equal(result.schedules[0].lag, schedule.lag)
  assert schedule.lag.max() > 1  # the rule acted on real staleness
  got = np.asarray(result.state.params["w"])
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, _numpy_loop(x, y, schedule), rtol=2e-5, atol=1e-6)
