"""Checks every field of an experiment config before anything is compiled or written.

Each problem raises :class:`ConfigError` naming the field, the value and what
is allowed, so a rejected sweep leaves no result directory behind.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

import dana_jax as dj
from dana_jax import schedule as S
from experiments import input_pipeline

# What load_data can read: scikit-learn's digits and the tfds data sets of input_pipeline.
DATASETS = ("digits", *input_pipeline.NUM_CLASSES)


class ConfigError(ValueError):
  """A config field that is not allowed."""


def _fail(field, value, allowed):
  raise ConfigError(f"config.{field}={value!r} is not allowed: {allowed}.")


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x) -> bool:
  return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
      and math.isfinite(float(x))


def _ints(config, field, minimum, *, allow_empty=False):
  value = config.get(field)
  if not isinstance(value, (tuple, list)) or (not value and not allow_empty) or not all(
      _is_int(v) and v >= minimum for v in value):
    _fail(field, value, f"need a {'' if allow_empty else 'non-empty '}tuple of integers "
          f"≥ {minimum}")


def _int(config, field, minimum, *, optional=False):
  value = config.get(field)
  if optional and value is None:
    return
  if not (_is_int(value) and value >= minimum):
    _fail(field, value, f"need an integer ≥ {minimum}" + (" or None" if optional else ""))


def _number(config, field, test, allowed, *, optional=False):
  value = config.get(field)
  if optional and value is None:
    return
  if not (_is_number(value) and test(float(value))):
    _fail(field, value, allowed)


def _choice(config, field, choices, default=None):
  value = config.get(field, default)
  if value not in choices:
    _fail(field, value, f"choose one of {sorted(choices)}")


def validate_config(config) -> None:
  """Raises :class:`ConfigError` for the first field that is not allowed."""
  from experiments import train

  _choice(config, "sweep", train.SWEEPS)
  _choice(config, "dataset", DATASETS)
  _choice(config, "model", train.MODELS)
  if config.model == "mlp":
    _ints(config, "hidden", 1, allow_empty=True)
  for field in ("depth", "widen_factor"):
    if config.get(field) is not None:
      _int(config, field, 1)
  if config.model == "resnet" and (config.get("depth", 20) - 2) % 6:
    _fail("depth", config.depth, "a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110)")
  _choice(config, "augment", train.AUGMENTATIONS, default="none")
  algorithms = config.get("algorithms")
  if not isinstance(algorithms, (tuple, list)) or not algorithms:
    _fail("algorithms", algorithms, "need a non-empty tuple of algorithm names")
  for name in algorithms:
    if name not in dj.ALGORITHMS:
      _fail("algorithms", name, f"choose from {sorted(dj.ALGORITHMS)}")
  if config.get("baseline") not in ("", None) and config.baseline not in dj.ALGORITHMS:
    _fail("baseline", config.baseline, f"'' (none) or one of {sorted(dj.ALGORITHMS)}")
  options = dict(config.get("algorithm_options", None) or {})
  for name in {*algorithms, *([config.baseline] if config.get("baseline") else [])}:
    unknown = sorted(set(options) - set(dj.get_algorithm(name).options()))
    if unknown:
      _fail("algorithm_options", options, f"{name!r} takes "
            f"{list(dj.get_algorithm(name).options()) or 'no options'}, not {unknown}")
  _ints(config, "num_workers", 1)
  _ints(config, "seeds", 0)
  if len(set(config.seeds)) != len(config.seeds):
    _fail("seeds", config.seeds, "seeds must be distinct")
  _int(config, "batch_size", 1)
  _int(config, "epochs", 1)
  _number(config, "learning_rate", lambda x: x > 0, "need a finite number > 0")
  _number(config, "momentum", lambda x: -1 < x < 1, "need a number in (−1, 1)")
  _number(config, "weight_decay", lambda x: x >= 0, "need a finite number ≥ 0")
  _number(config, "warmup_epochs", lambda x: x >= 0, "need a number ≥ 0")
  decays = config.get("decay_epochs")
  if not isinstance(decays, (tuple, list)) or not all(_is_number(d) and d >= 0 for d in decays) \
      or list(decays) != sorted(decays):
    _fail("decay_epochs", decays, "need an increasing tuple of epochs ≥ 0")
  if config.sweep == "grid":
    for field, test, allowed in (("grid_learning_rates", lambda x: x > 0, "> 0"),
                                 ("grid_momenta", lambda x: -1 < x < 1, "in (−1, 1)")):
      values = config.get(field)
      if not isinstance(values, (tuple, list)) or not values or not all(
          _is_number(v) and test(float(v)) for v in values):
        _fail(field, values, f"need a non-empty tuple of numbers {allowed}")
  _validate_timing(config)
  _choice(config, "execution", dj.engine.EXECUTIONS)
  _int(config, "block_size", 1, optional=True)
  _int(config, "chunk_steps", 1, optional=True)
  _number(config, "eval_every_epochs", lambda x: x > 0, "need a number > 0 or None",
          optional=True)
  _int(config, "train_eval_examples", 1, optional=True)
  _int(config, "eval_examples", 1, optional=True)
  if config.get("image_size") is not None:
    _int(config, "image_size", 1)
    _int(config, "stored_size", config.image_size)
  _number(config, "checkpoint_every_epochs", lambda x: x >= 0,
          "need a number of epochs > 0, or 0 for no checkpoints", optional=True)
  _validate_devices(config)
  for field in ("data_dir", "idx_dir"):
    value = config.get(field)
    if value and not pathlib.Path(value).expanduser().is_dir():
      _fail(field, value, "the directory does not exist (leave it unset for the default)")


def _validate_timing(config) -> None:
  _choice(config, "timing", S.TIMING_MODELS)
  _number(config, "timing_shape", lambda x: x > 0, "need a gamma shape > 0 or None",
          optional=True)
  if config.timing != "trace":
    return
  path = config.get("timing_trace") or ""
  if not pathlib.Path(path).is_file():
    _fail("timing_trace", path, "timing='trace' needs a .npy file of batch times "
          "[num_workers, jobs]")
  try:
    times = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    _fail("timing_trace", path, f"not a readable .npy array ({e})")
  if times.ndim != 2 or not np.all(np.isfinite(times)) or not np.all(times > 0):
    _fail("timing_trace", path, f"need a 2-D array of positive batch times, got shape "
          f"{times.shape}")
  others = [n for n in config.num_workers if n != times.shape[0]]
  if others:
    _fail("num_workers", tuple(config.num_workers), f"the trace {path} has "
          f"{times.shape[0]} workers (rows); every N must equal it")
  if config.get("baseline"):
    _fail("baseline", config.baseline, "a trace fixes N, so the N = 1 baseline cannot use "
          "it: set --config.baseline=''")


def _validate_devices(config) -> None:
  mesh = config.get("mesh")
  if mesh is not None:
    for axis in ("replicas", "workers"):
      value = mesh.get(axis)
      if not (_is_int(value) and value >= 1):
        _fail(f"mesh.{axis}", value, "need an integer ≥ 1")
    if mesh.workers > 1 and config.execution != "blocks":
      _fail("mesh.workers", mesh.workers, "shards a block's gradients: needs "
            f"config.execution='blocks' (got {config.execution!r})")
  _int(config, "host_devices", 0, optional=True)
  dist = config.get("distributed")
  if dist is not None and dist.initialize:
    if dist.num_processes and dist.process_id >= dist.num_processes:
      _fail("distributed.process_id", dist.process_id,
            f"need 0 ≤ process_id < num_processes = {dist.num_processes}")
    if dist.coordinator_address and ":" not in dist.coordinator_address:
      _fail("distributed.coordinator_address", dist.coordinator_address, "need HOST:PORT")
