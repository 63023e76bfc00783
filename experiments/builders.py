"""The library's components of one sweep point, built from the config as keyword arguments.

Each component a sweep configures is a config sub-dict whose keys are its
constructor's arguments: ``config.timing = dict(name=..., **arguments)`` goes to
``dana_jax.timing.make_timing``, ``config.simulator`` to ``dana_jax.Simulator``
(and ``dana_jax.RunSpec.create``) as ``**config.simulator``; the algorithm and
its options to the same calls. Nothing here checks a value: what the library
refuses reaches the user as the library says it (:func:`experiments.validate.library_errors`).
"""

from __future__ import annotations

import functools

import flax.linen as nn

import dana_jax as dj
from dana_jax import timing as timing_models
from dana_jax import transformer
from experiments import registry, validate

# The Simulator's keywords a sweep sets itself (from its own fields and each point);
# every other keyword of dj.Simulator is an execution option of ``config.simulator``.
SET_BY_THE_SWEEP = ("model", "algorithm", "train_inputs", "train_labels", "num_workers",
                    "batch_size", "hyperparams", "learning_rate_schedule", "algorithm_options",
                    "timing", "seeds", "augment", "mesh", "environment")


def simulator_keywords() -> list[str]:
  """The keywords ``config.simulator`` may set: dj.Simulator's, but those the sweep sets."""
  import inspect
  return [k for k in inspect.signature(dj.Simulator).parameters if k not in SET_BY_THE_SWEEP]


def build_model(config, input_shape, num_classes):
  """The engine model of ``config.model``: a built-in (``registry.MODELS``) or a user's
  ``package.module:factory`` (:func:`experiments.registry.model_factory`)."""
  try:
    factory = registry.model_factory(config.model)
  except registry.ModelError as e:
    raise validate.ConfigError(str(e)) from None
  try:
    module = factory(config, num_classes)
  except Exception as e:  # a user's factory (or a model's field) raises any kind
    raise validate.ConfigError(
        f"config.model={config.model!r} is not allowed: building it for {num_classes} "
        f"classes raised {type(e).__name__}: {(str(e).splitlines() or [''])[0]}") from None
  if not isinstance(module, nn.Module):
    raise validate.ConfigError(f"config.model={config.model!r} is not allowed: its factory "
                               f"returned a {type(module).__name__}, not a flax module")
  try:
    if config.dataset in registry.TEXT_DATASETS:  # next-token loss on token windows
      return transformer.language_model(module, input_shape[0])
    return dj.flax_model(module, input_shape)
  except Exception as e:  # a user's module that does not fit the data
    raise validate.ConfigError(f"config.model={config.model!r} is not allowed: initialising "
                               f"it on inputs of shape {tuple(input_shape)} failed "
                               f"({type(e).__name__}: "
                               f"{(str(e).splitlines() or [''])[0]})") from None


def build_augmentation(config):
  """``(inputs, key) -> inputs`` of ``config.augment`` (one of ``registry.AUGMENTATIONS``)."""
  name = config.get("augment", "none")
  if name == "none":
    return None
  from experiments import augment
  if name == "crop_flip":
    return augment.random_crop_and_flip
  if name == "random_resized_crop":
    return functools.partial(augment.random_resized_crop, size=config.image_size)
  raise ValueError(f"config.augment={name!r} is not allowed: choose one of "
                   f"{registry.AUGMENTATIONS}.")


def build_timing(config):
  """``config.timing``'s model: ``make_timing(**config.timing)``, refusals as the library's."""
  arguments = dict(config.timing)
  with validate.library_errors("timing"):
    return timing_models.make_timing(arguments.pop("name", None), **arguments)


def _per_workers(field, value, num_workers):
  """An option value; a string ``"<a>*N"`` is max(1, round(a · N)) (e.g. ``"0.75*N"``)."""
  if not isinstance(value, str) or not value.endswith("*N"):
    return value
  try:
    factor = float(value[:-2])
  except ValueError:
    raise validate.ConfigError(f"config.{field}={value!r} is not allowed: a number, or "
                               "'<a>*N' for max(1, round(a·N))") from None
  return max(1, int(round(factor * num_workers)))


def options_for(config, algorithm: str, num_workers: int) -> dict:
  """The algorithm options of one (algorithm, N): ``algorithm_options`` for every
  algorithm, then ``options_by_algorithm[algorithm]`` (values may be ``"<a>*N"``)."""
  options = dict(config.get("algorithm_options", None) or {})
  mine = dict((config.get("options_by_algorithm", None) or {}).get(algorithm, None) or {})
  for key, value in mine.items():
    if key in ("learning_rate", "momentum"):  # hyperparameters, not options (sweep_points)
      continue
    options[key] = _per_workers(f"options_by_algorithm.{algorithm}.{key}", value, num_workers)
  return options


def replicas_of(config, cells, mesh) -> tuple[list, list]:
  """The (cell, seed) of every replica, and of every simulated one.

  Replica r is cell r // S, seed r % S; repeats of the last replica fill the
  mesh's replica axis (they are simulated, not written).
  """
  replicas = [(c, s) for c in cells for s in config.seeds]
  per_device = 1 if mesh is None else mesh.shape["replicas"]
  return replicas, replicas + [replicas[-1]] * (-len(replicas) % per_device)


def simulator_options(config, num_workers: int) -> dict:
  """``config.simulator`` as the Simulator's keyword arguments at N = ``num_workers``:
  ``block_size`` caps K for the whole sweep (K ≤ N, e.g. N = 1 for the baseline)."""
  options = dict(config.get("simulator", None) or {})
  if options.get("block_size") is not None and isinstance(options["block_size"], int):
    options["block_size"] = min(options["block_size"], num_workers)
  return options


def build_environment(config, timing):
  """``config.environment``'s parts with ``timing`` as the compute part
  (``dana_jax.environment.make_environment``; empty groups: the defaults)."""
  parts = {part: (dict(value) or None) for part, value in
           (config.get("environment", None) or {}).items()}
  with validate.library_errors("environment"):
    return dj.environment.make_environment(compute=timing, **parts)


def build_run_spec(config, point: dict, num_examples: int, mesh=None, timing=None):
  """The frozen description (``dj.RunSpec``) of one sweep point: its algorithm, N, options,
  timing, seeds and ``config.simulator``; no model, no data, nothing compiled."""
  algorithm, num_workers = point["algorithm"], point["num_workers"]
  _, simulated = replicas_of(config, point["cells"], mesh)
  return dj.RunSpec.create(
      algorithm, num_workers=num_workers, batch_size=config.batch_size,
      num_examples=num_examples, algorithm_options=options_for(config, algorithm, num_workers),
      environment=build_environment(config, build_timing(config) if timing is None else timing),
      seeds=[s for _, s in simulated], mesh=mesh,
      **simulator_options(config, num_workers))


def learning_rate_schedule(config, spec, num_examples: int):
  """The GA paper's schedule of the point (:func:`dana_jax.paper_learning_rate`): warm-up and
  decays in epochs of ``num_examples // batch_size`` stream batches, G per round, H per
  job (docs/spec.md §2.9, §6.5)."""
  steps_per_epoch = (num_examples // config.batch_size) / spec.batches_per_step
  return functools.partial(dj.paper_learning_rate, steps_per_epoch=steps_per_epoch,
                           num_workers=spec.num_workers, warmup_epochs=config.warmup_epochs,
                           decay_epochs=tuple(config.decay_epochs))


def build_simulator(config, point: dict, dataset, mesh=None):
  """The Simulator of one sweep point: its cells × seeds as replicas of one program."""
  algorithm, num_workers = point["algorithm"], point["num_workers"]
  timing = build_timing(config)
  spec = build_run_spec(config, point, dataset.num_train, mesh, timing)
  _, simulated = replicas_of(config, point["cells"], mesh)
  return dj.Simulator(
      build_model(config, dataset.input_shape, dataset.num_classes), algorithm,
      dataset.train_inputs, dataset.train_labels, num_workers=num_workers,
      batch_size=config.batch_size, seeds=[s for _, s in simulated],
      hyperparams=dj.Hyperparams([c["learning_rate"] for c, _ in simulated],
                                 [c["momentum"] for c, _ in simulated], config.weight_decay),
      learning_rate_schedule=learning_rate_schedule(config, spec, dataset.num_train),
      environment=build_environment(config, timing), augment=build_augmentation(config),
      algorithm_options=options_for(config, algorithm, num_workers), mesh=mesh,
      **simulator_options(config, num_workers))
