"""Impossible configurations fail early with a message naming the field."""

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import models

X = np.zeros((64, 8, 8), np.float32)
Y = np.zeros(64, np.int32)
MODEL = dj.flax_model(models.MLP((4,)), (8, 8))


@pytest.mark.parametrize("kwargs,field", [
    (dict(num_workers=0), "num_workers"),
    (dict(num_workers=2.5), "num_workers"),
    (dict(execution="blocks", block_size=0), "block_size"),
    (dict(execution="warp"), "execution"),
    (dict(batch_size=65), "batch_size"),
    (dict(batch_size=0), "batch_size"),
    # A timing model refuses a bad field when it is made (a lambda: made inside the test).
    (lambda: dict(timing=dj.GammaTiming(shape=0.0)), "timing.shape"),
    (lambda: dict(timing=dj.GammaTiming(scale=-1.0)), "timing.scale"),
    (lambda: dict(timing=dj.ConstantTiming(batch_time=0.0)), "timing.batch_time"),
    (lambda: dict(timing=dj.TraceTiming(np.ones((3, 10)))), "timing.batch_times.shape[0]"),
    (dict(hyperparams=dj.Hyperparams(learning_rate=0.0)), "hyperparams.learning_rate"),
    (dict(hyperparams=dj.Hyperparams(momentum=1.0)), "hyperparams.momentum"),
    (dict(hyperparams=dj.Hyperparams(weight_decay=-1.0)), "hyperparams.weight_decay"),
    (dict(seeds=[0, 1], hyperparams=dj.Hyperparams(learning_rate=[0.1, 0.2, 0.3])),
     "hyperparams.learning_rate"),
    (dict(algorithm_options={"penalty": "max"}), "algorithm_options"),
])
def test_bad_simulator_config(kwargs, field):
  base = dict(num_workers=2, batch_size=8)
  with pytest.raises(dj.ConfigError, match=field.replace(".", r"\.").replace("[", r"\[")):
    base.update(kwargs() if callable(kwargs) else kwargs)
    dj.Simulator(MODEL, "nag", X, Y, **base)


def test_unknown_algorithm_and_option():
  with pytest.raises(ValueError, match="algorithm='adamw'"):
    dj.Simulator(MODEL, "adamw", X, Y, num_workers=2, batch_size=8)
  with pytest.raises(ValueError, match="penalti"):
    dj.optimizer("ga", penalti="max")
  with pytest.raises(ValueError, match="penalty='square'"):
    dj.optimizer("ga", penalty="square")


def test_unknown_timing_model():
  with pytest.raises(ValueError, match="timing.name='poisson'"):
    dj.timing.make_timing("poisson")


def test_trace_too_short_for_the_steps():
  sim = dj.Simulator(MODEL, "nag", X, Y, num_workers=2, batch_size=8,
                     timing=dj.TraceTiming(np.ones((2, 5))))
  with pytest.raises(ValueError, match=r"timing.batch_times=<a 2 × 5 trace> is not allowed: "
                     r"the run needs at least 6 batch times"):
    dj.simulate(sim, 50, progress=False)


def test_bad_steps():
  sim = dj.Simulator(MODEL, "nag", X, Y, num_workers=2, batch_size=8)
  with pytest.raises(ValueError, match="num_steps"):
    dj.simulate(sim, 0, progress=False)
  with pytest.raises(ValueError, match="chunk_steps"):
    dj.simulate(sim, 5, chunk_steps=-1, progress=False)


def test_missing_extra_arg_is_named():
  tx = dj.optimizer("sa")
  params = {"w": np.ones(2, np.float32)}
  with pytest.raises(ValueError, match="`lag`"):
    tx.update(params, tx.init(params), params)
  tx = dj.optimizer("dana", num_workers=2)
  with pytest.raises(ValueError, match="`worker`"):
    tx.update(params, tx.init(params), params)
  tx = dj.optimizer("ga")
  with pytest.raises(ValueError, match="`stale_params`"):
    tx.update(params, tx.init(params), params)


def test_dana_worker_out_of_range_is_named():
  tx = dj.optimizer("dana", num_workers=2)
  params = {"w": np.ones(2, np.float32)}
  for worker in (2, -1, np.int32(5)):
    with pytest.raises(ValueError, match="worker=.*num_workers=2"):
      tx.update(params, tx.init(params), params, worker=worker)
