"""Every bad config is refused before anything is compiled or written, naming the field."""

import numpy as np
import pytest

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
