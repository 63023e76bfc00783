"""Impossible configurations are refused early, naming the field: the library's own checks
(Simulator, optimizers, timing models), then the experiments' config validation (every bad
config refused before anything is compiled or written)."""

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import models
from experiments import train, validate
from experiments.configs import cifar10, digits


def digits_config(**fields):
  config = digits.get_config()
  config.update(dict(algorithms=("ga",), num_workers=(4,), seeds=(0,), epochs=1))
  config.update(fields)
  return config


def trace(tmp_path, rows):
  path = tmp_path / "trace.npy"
  np.save(path, np.random.default_rng(0).gamma(4.0, 0.3, size=(rows, 500)))
  return str(path)


BAD = [  # (name, fields, the field the message must name)
    ("negative learning rate", dict(learning_rate=-0.1), "config.learning_rate"),
    ("zero learning rate", dict(learning_rate=0.0), "config.learning_rate"),
    ("nan learning rate", dict(learning_rate=float("nan")), "config.learning_rate"),
    ("momentum 1", dict(momentum=1.0), "config.momentum"),
    ("momentum below -1", dict(momentum=-1.5), "config.momentum"),
    ("negative weight decay", dict(weight_decay=-1e-4), "config.weight_decay"),
    ("N = 0", dict(num_workers=(0,)), "config.num_workers"),
    ("no N", dict(num_workers=()), "config.num_workers"),
    ("unknown algorithm", dict(algorithms=("adam",)), "config.algorithms"),
    ("unknown baseline", dict(baseline="adam"), "config.baseline"),
    ("unknown data set", dict(dataset="mnist"), "config.dataset"),
    ("unknown model", dict(model="vgg"), "config.model"),
    ("unknown sweep", dict(sweep="random"), "config.sweep"),
    ("unknown augmentation", dict(augment="mixup"), "config.augment"),
    ("unknown timing", dict(timing=dict(name="poisson")), "config.timing"),
    ("non-positive gamma shape", dict(timing=dict(name="heterogeneous", shape=-1.0)),
     "config.timing: timing.shape=-1.0"),
    ("zero gamma shape", dict(timing=dict(name="heterogeneous", shape=0.0)),
     "config.timing: timing.shape=0.0"),
    ("block size 0", dict(simulator=dict(block_size=0)), "config.simulator: block_size=0"),
    ("unknown execution", dict(simulator=dict(execution="parallel")),
     "config.simulator: execution='parallel'"),
    ("not a simulator keyword", dict(simulator=dict(nosuch=1)), "config.simulator.nosuch"),
    ("a field of the earlier layout", dict(timing_shape=2.0),
     "config.timing_shape is gone: use --config.timing.shape"),
    ("zero epochs", dict(epochs=0), "config.epochs"),
    ("repeated seeds", dict(seeds=(0, 0)), "config.seeds"),
    ("decays out of order", dict(decay_epochs=(7.0, 5.0)), "config.decay_epochs"),
    ("negative warm-up", dict(warmup_epochs=-1.0), "config.warmup_epochs"),
    ("grid momentum 1.5", dict(sweep="grid", grid_learning_rates=(0.1,), grid_momenta=(1.5,)),
     "config.grid_momenta"),
    ("zero batch", dict(batch_size=0), "config.batch_size"),
    ("batch larger than the data", dict(batch_size=5000), "config.batch_size"),
    ("missing data directory", dict(data_dir="/nonexistent/tensorflow_datasets"),
     "config.data_dir"),
    ("mesh of 0 replicas", dict(mesh=dict(replicas=0, workers=1)),
     "config.mesh: mesh.replicas"),
    ("worker mesh without blocks", dict(mesh=dict(replicas=1, workers=2)),
     "config.mesh: mesh.workers"),
    ("trace without a file", dict(timing=dict(name="trace", batch_times=""), baseline=""),
     "config.timing: timing.batch_times=''"),
    ("option the algorithm does not take", dict(algorithm_options={"penalty": "max"},
                                                algorithms=("nag",)), "config.algorithm_options"),
    ("negative checkpoint interval", dict(checkpoint_every_epochs=-1.0),
     "config.checkpoint_every_epochs"),
]


@pytest.mark.parametrize("name, fields, field", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_refused_and_writes_nothing(name, fields, field, tmp_path):
  workdir = tmp_path / "runs"
  with pytest.raises(validate.ConfigError, match=field.replace(".", r"\.")):
    train.run_sweep(digits_config(**fields), workdir)
  assert not workdir.exists()


def test_trace_with_the_wrong_number_of_workers(tmp_path):
  config = digits_config(timing=dict(name="trace", batch_times=trace(tmp_path, 3)),
                         baseline="")
  # dana_jax's TraceTiming rule: one row per worker.
  with pytest.raises(validate.ConfigError,
                     match=r"config\.timing: .*shape\[0\]=3 .*num_workers=4"):
    train.run_sweep(config, tmp_path / "runs")
  assert not (tmp_path / "runs").exists()


def test_resnet_depth_must_be_6n_plus_2(tmp_path):
  config = cifar10.get_config("main")
  config.depth = 21
  with pytest.raises(validate.ConfigError, match=r"config\.depth=21"):
    train.run_sweep(config, tmp_path / "runs")


def test_imagenet_crop_larger_than_the_stored_image(tmp_path):
  from experiments.configs import imagenet

  config = imagenet.get_config("short")
  config.image_size = 300
  with pytest.raises(validate.ConfigError, match=r"config\.stored_size=256 .* ≥ 300"):
    train.run_sweep(config, tmp_path / "runs")
  assert not (tmp_path / "runs").exists()


def test_a_trace_of_the_right_size_drives_the_sweep(tmp_path):
  config = digits_config(timing=dict(name="trace", batch_times=trace(tmp_path, 4)),
                         baseline="")
  (summary,) = train.run_sweep(config, tmp_path / "runs")
  assert summary["num_workers"] == 4 and summary["steps"] > 0


def test_every_shipped_preset_passes_validation():
  from experiments.configs import fashion_mnist, imagenet

  for config in ([cifar10.get_config(p) for p in cifar10.PRESETS]
                 + [imagenet.get_config(p) for p in imagenet.PRESETS]
                 + [fashion_mnist.get_config(p) for p in ("main", "ga_no_momentum", "cnn")]
                 + [digits.get_config()]):
    validate.validate_config(config)



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
