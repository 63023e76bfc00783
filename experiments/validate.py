"""Checks an experiment config's own fields before anything is compiled or written.

Each problem raises :class:`ConfigError` naming the field, the value and what
is allowed, so a rejected sweep leaves no result directory behind. What the
config hands to dana_jax (hyperparameters, algorithm options, timing, block
size, execution and replica execution, mesh) is checked by the library itself:
:mod:`experiments.preflight` runs those checks up front, each refusal the
library's line prefixed by its config path (:func:`library_errors`).
"""

from __future__ import annotations

import contextlib
import math
import pathlib

import numpy as np

from dana_jax import errors
from experiments import registry
from experiments.fields import GONE, gone_message


class ConfigError(errors.ConfigError):
  """A config field that is not allowed (the library's one exception type)."""


def fail(field, value, allowed):
  """One :class:`ConfigError` line: ``config.<field>=<value> is not allowed: <allowed>.``"""
  raise ConfigError(f"config.{field}={value!r} is not allowed: {allowed}.")


@contextlib.contextmanager
def library_errors(where: str):
  """dana_jax's refusal of what ``config.<where>`` handed it, as a :class:`ConfigError`:
  the library's line unchanged, prefixed only by where it sits in the config
  (``config.timing: timing.shape=-1.0 is not allowed: ...``)."""
  try:
    yield
  except ConfigError:
    raise
  except ValueError as e:  # dana_jax.ConfigError is one
    raise ConfigError(f"config.{where}: {e}") from e


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x) -> bool:
  return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _is_number(x) -> bool:
  return _is_real(x) and math.isfinite(float(x))


def _ints(config, field, minimum=None, *, allow_empty=False):
  value = config.get(field)
  if not isinstance(value, (tuple, list)) or (not value and not allow_empty) or not all(
      _is_int(v) and (minimum is None or v >= minimum) for v in value):
    fail(field, value, f"need a {'' if allow_empty else 'non-empty '}tuple of integers"
          + ("" if minimum is None else f" ≥ {minimum}"))


def _int(config, field, minimum, *, optional=False):
  value = config.get(field)
  if optional and value is None:
    return
  if not (_is_int(value) and value >= minimum):
    fail(field, value, f"need an integer ≥ {minimum}" + (" or None" if optional else ""))


def _number(config, field, test, allowed, *, optional=False):
  value = config.get(field)
  if optional and value is None:
    return
  if not (_is_number(value) and test(float(value))):
    fail(field, value, allowed)


def _choice(config, field, choices, default=None):
  value = config.get(field, default)
  if value not in choices:
    fail(field, value, f"choose one of {sorted(choices)}")


def validate_config(config) -> None:
  """Raises :class:`ConfigError` for the first experiment field that is not allowed."""
  _choice(config, "sweep", registry.SWEEPS)
  _choice(config, "dataset", registry.DATASETS)
  _validate_model(config)
  _validate_sweep(config)
  _validate_components(config)
  # dana_jax.simulate checks its chunk_steps too, but only once run directories exist.
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
      fail(field, value, "the directory does not exist (leave it unset for the default)")


def _validate_model(config) -> None:
  """The model's own fields, and the augmentation (before any data loads)."""
  try:
    registry.model_factory(config.get("model"))
  except registry.ModelError as e:
    raise ConfigError(str(e)) from None
  if config.model == "mlp":
    _ints(config, "hidden", 1, allow_empty=True)
  for field in ("depth", "widen_factor"):
    if config.get(field) is not None:
      _int(config, field, 1)
  # models.CifarResNet has the same rule, but only runs it when the model is traced,
  # which needs the data's input shape: here a depth typo fails before any data loads.
  if config.model == "resnet" and (config.get("depth", 20) - 2) % 6:
    fail("depth", config.depth, "a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110)")
  if config.get("model") == "transformer":
    for field in ("window", "width", "heads"):
      _int(config, field, 1)
    if config.width % config.heads:
      fail("width", config.width, f"need a multiple of heads = {config.heads}")
    _choice(config, "positions", ("learned", "rotary"), default="learned")
    if config.get("positions") == "rotary" and (config.width // config.heads) % 2:
      fail("width", config.width, f"rotary positions need an even head size width / heads "
            f"(here {config.width // config.heads})")
    _number(config, "dropout", lambda x: 0 <= x < 1, "need a number in [0, 1)", optional=True)
  if config.dataset in registry.TEXT_DATASETS:
    _int(config, "window", 1)
    _int(config, "max_train_windows", 1, optional=True)
  _choice(config, "augment", registry.AUGMENTATIONS, default="none")


def _validate_sweep(config) -> None:
  """The sweep's sets (algorithms, N, seeds, the grid) and its epochs; the values that
  go to dana_jax are its to check."""
  algorithms = config.get("algorithms")
  if not isinstance(algorithms, (tuple, list)) or not algorithms:
    fail("algorithms", algorithms, "need a non-empty tuple of algorithm names")
  # The values of num_workers (N ≥ 1) are dana_jax's to check; their container is ours.
  _ints(config, "num_workers")
  for field in ("algorithms", "num_workers"):  # a repeat would run (or skip) a point twice
    if len(set(config[field])) != len(config[field]):
      fail(field, config[field], "each value once")
  _ints(config, "seeds", 0)
  if len(set(config.seeds)) != len(config.seeds):
    fail("seeds", config.seeds, "seeds must be distinct")
  if max(config.seeds) >= 2**63:  # a seed is an int64 (numpy's and jax's keys)
    fail("seeds", config.seeds, "need integers < 2^63")
  _int(config, "epochs", 1)
  _number(config, "warmup_epochs", lambda x: x >= 0, "need a number ≥ 0")
  decays = config.get("decay_epochs")
  if not isinstance(decays, (tuple, list)) or not all(_is_number(d) and d >= 0 for d in decays) \
      or list(decays) != sorted(decays):
    fail("decay_epochs", decays, "need an increasing tuple of epochs ≥ 0")
  if config.sweep == "grid":
    for field in ("grid_learning_rates", "grid_momenta"):  # their range: dana_jax's
      values = config.get(field)
      if not isinstance(values, (tuple, list)) or not values or not all(map(_is_real, values)):
        fail(field, values, "need a non-empty tuple of numbers")


def _validate_components(config) -> None:
  """No field of an earlier layout; ``config.timing`` and ``config.simulator`` are groups of
  a component's keyword arguments (``timing`` names its model), whose values the
  library checks."""
  for field in GONE:
    if field in config:
      raise ConfigError(gone_message(field))
  for field in ("timing", "simulator"):
    if not hasattr(config.get(field), "items"):
      fail(field, config.get(field), f"a group of keyword arguments, "
            f"--config.{field}.NAME=VALUE (experiments/configs/common.py)")
  if "name" not in config.timing:
    fail("timing", dict(config.timing), "name the timing model: --config.timing.name=NAME")
  environment = config.get("environment")
  if environment is None:
    return
  parts = ("links", "availability", "speed", "placement")
  if not hasattr(environment, "items"):
    fail("environment", environment, f"a group of the parts {parts}, "
         "--config.environment.PART.ARG=VALUE")
  for part, value in environment.items():
    if part == "compute":
      fail("environment.compute", value, "the compute part is config.timing "
           "(--config.timing.name=NAME)")
    if part not in parts:
      fail(f"environment.{part}", value.to_dict() if hasattr(value, "to_dict") else value,
           f"choose a part of {parts}")
    if not hasattr(value, "items"):
      fail(f"environment.{part}", value, f"a group of its arguments, "
           f"--config.environment.{part}.ARG=VALUE")


def _validate_devices(config) -> None:
  _int(config, "host_devices", 0, optional=True)
  dist = config.get("distributed")
  if dist is not None and dist.initialize:
    if dist.num_processes and dist.process_id >= dist.num_processes:
      fail("distributed.process_id", dist.process_id,
            f"need 0 ≤ process_id < num_processes = {dist.num_processes}")
    if dist.coordinator_address and ":" not in dist.coordinator_address:
      fail("distributed.coordinator_address", dist.coordinator_address, "need HOST:PORT")
