"""The checks before a sweep writes anything: the work directory, then what it hands dana_jax.

Everything a sweep configures goes to the library as the library's own
arguments (:mod:`experiments.builders`), and the library checks it: each
component alone first, at values the others accept, so a refusal is the
library's message prefixed by the config path it came from
(``config.timing: timing.shape=-1.0 is not allowed: ...``); then each point's
whole description (``dana_jax.RunSpec.create``: no model, no data, nothing
compiled). With the data loaded: the batch size against it, and every point's
memory estimate (``dana_jax.check_size``) and trace length (``dana_jax.check_timing``),
so a sweep that cannot run fails at once, not an hour in.
"""

from __future__ import annotations

import errno
import pathlib
import shutil

import dana_jax as dj
from experiments import validate
from experiments.builders import (
  build_augmentation,
  build_model,
  build_run_spec,
  build_timing,
  options_for,
  simulator_keywords,
  simulator_options,
)

library_errors = validate.library_errors
# The number of examples a point is checked with before the data is loaded: any batch fits.
UNKNOWN_SIZE = 2**62


MIN_FREE_BYTES = 64 * 2**20  # a sweep's summaries and metrics; parameters and checkpoints more


def check_workdir(workdir: pathlib.Path) -> None:
  """The work directory can take a sweep: not a file, not a symbolic link loop or a link to
  nothing, names the file system takes, writable, and not on a full disk — checked on its
  nearest existing parent, so a refused sweep creates nothing."""
  import os
  import tempfile
  field = f"--workdir={str(workdir)!r}"

  def entry(path) -> bool:  # lstat: a link counts as there, even one that leads nowhere
    try:
      return path.lstat() is not None
    except (OSError, ValueError):
      return False

  existing = workdir
  while not entry(existing) and existing != existing.parent:
    existing = existing.parent
  where = "it" if existing == workdir else f"{existing} (above it)"
  try:
    existing.stat()  # follows links: a loop, or a link to nothing, fails here
  except ValueError:  # a NUL character
    raise validate.ConfigError(f"{field} is not allowed: a path cannot hold a NUL "
                               "character") from None
  except OSError as e:
    what = {errno.ELOOP: "is a symbolic link loop",
            errno.ENOENT: "is a symbolic link to nothing"}.get(e.errno, f"cannot be read "
                                                                 f"({e.strerror})")
    raise validate.ConfigError(f"{field} is not allowed: {where} {what}; give a "
                               "directory") from None
  for part in workdir.relative_to(existing).parts:  # the directories still to be made
    if len(os.fsencode(part)) > 255:
      raise validate.ConfigError(f"{field} is not allowed: a name in it is longer than the "
                                 "255 bytes a file system takes")
  if not existing.is_dir():
    what = "is a file" if existing == workdir else f"is under a file ({existing})"
    raise validate.ConfigError(f"{field} is not allowed: it {what}; give a directory")
  try:
    pathlib.Path(tempfile.mkdtemp(dir=existing, prefix=".dana_jax_probe_")).rmdir()
  except OSError as e:
    if e.errno == errno.ENOSPC:
      raise validate.ConfigError(f"{field} is not allowed: the disk is full") from None
    raise validate.ConfigError(f"{field} is not allowed: {existing} is not writable "
                               f"({e.strerror})") from None
  free = shutil.disk_usage(existing).free
  if free < MIN_FREE_BYTES:
    raise validate.ConfigError(f"{field} is not allowed: the disk is full "
                               f"({free / 2**20:.1f} MiB free; a sweep needs at least "
                               f"{MIN_FREE_BYTES / 2**20:.0f} MiB)")


def check_tensorboard(config) -> None:
  """``config.tensorboard`` needs the optional tensorboardX."""
  if config.get("tensorboard"):
    from experiments import tensorboard
    if not tensorboard.available():
      raise validate.ConfigError("config.tensorboard=True is not allowed here: tensorboardX "
                                 f"is not installed; {tensorboard.INSTALL}")


def _spec(algorithm="asgd", **arguments):
  """``dj.RunSpec.create`` with ``arguments`` and accepted values for the rest."""
  return dj.RunSpec.create(algorithm, **{"num_workers": 1, "batch_size": 1,
                                         "num_examples": UNKNOWN_SIZE, **arguments})


def _check_hyperparams(field, **values) -> None:
  """The library's refusal of η, γ or λ (one replica's)."""
  from dana_jax.engine import check_hyperparams
  with library_errors(field):
    check_hyperparams(dj.Hyperparams(**values), 1)


def check_algorithms(config) -> None:
  """Each algorithm (and the baseline) exists and takes ``algorithm_options``; each of
  ``options_by_algorithm`` names an algorithm and its options are ones it takes (checked
  even where the sweep leaves it out: a preset's options for it are then unused, but a
  mistake in them is still one). Values ``"<a>*N"`` are checked at N = 1 here, at each
  point's N by :func:`check_points`."""
  options = dict(config.get("algorithm_options", None) or {})
  for field, names in (("baseline", [config.baseline] if config.get("baseline") else []),
                       ("algorithms", config.algorithms)):
    for name in names:
      with library_errors(field):
        dj.get_algorithm(name)
      try:
        with library_errors("algorithm_options"):
          dj.optimizer(name, **options)  # the options' names and values
      except validate.ConfigError as e:
        raise validate.ConfigError(
            f"{e} algorithm_options go to every algorithm of the sweep (the baseline too); "
            "for one algorithm use --config.options_by_algorithm.ALG.NAME=VALUE") from None
  for name, mine in dict(config.get("options_by_algorithm", None) or {}).items():
    if name not in dj.ALGORITHMS:
      raise validate.ConfigError(f"config.options_by_algorithm.{name} is not allowed: "
                                 f"{name!r} is not an algorithm; choose from "
                                 f"{sorted(dj.ALGORITHMS)}")
    own = {k: v for k, v in dict(mine or {}).items() if k not in ("learning_rate", "momentum")}
    with library_errors(f"options_by_algorithm.{name}"):
      dj.get_algorithm(name).check_options(
          options_for({"options_by_algorithm": {name: own}}, name, 1))
    hyper = {k: v for k, v in dict(mine or {}).items() if k in ("learning_rate", "momentum")}
    if hyper:
      _check_hyperparams(f"options_by_algorithm.{name}", **hyper)


def check_simulator_fields(config) -> None:
  """``config.simulator`` holds keywords of ``dana_jax.Simulator`` only, each alone a value
  it accepts (its refusal as the library's line)."""
  keywords = simulator_keywords()
  for key in dict(config.get("simulator", None) or {}):
    if key not in keywords:
      raise validate.ConfigError(
          f"config.simulator.{key} is not allowed: config.simulator holds the keyword "
          f"arguments of dana_jax.Simulator, {keywords} (the others come from the sweep)")
  with library_errors("simulator"):
    _spec(config.algorithms[0], algorithm_options=options_for(config, config.algorithms[0], 1),
          **simulator_options(config, 1))


def check_with_library(config, points, mesh) -> None:
  """dana_jax's own checks of what the sweep hands it, before anything is compiled or written.

  Each config field goes to the library alone (the other arguments at values it
  accepts), so a refusal names the config path that caused it; then each point's
  algorithm, N, options, timing and ``config.simulator`` go together
  (:func:`check_points`). The batch size against the data: :func:`check_batch_size`.
  """
  check_algorithms(config)
  timing = build_timing(config)
  for field in ("learning_rate", "momentum", "weight_decay"):
    _check_hyperparams(field, **{field: config[field]})
  if config.sweep == "grid":
    for value in config.grid_learning_rates:
      _check_hyperparams("grid_learning_rates", learning_rate=value)
    for value in config.grid_momenta:
      _check_hyperparams("grid_momenta", momentum=value)
  workers = list(dict.fromkeys(p["num_workers"] for p in points))
  for n in workers:  # N alone (any algorithm takes any N ≥ 1), and the part that grows with it
    with library_errors("num_workers"):
      dj.check_size(_spec(num_workers=n))
  with library_errors("batch_size"):
    _spec(batch_size=config.batch_size)
  check_simulator_fields(config)
  for n in workers:
    with library_errors("timing"):
      _spec(config.algorithms[0], num_workers=n, timing=timing,
            algorithm_options=options_for(config, config.algorithms[0], n))
  check_points(config, points, mesh, timing)


def check_points(config, points, mesh, timing) -> None:
  """Each point's algorithm options at its N (the event rules they make too), then, on a
  mesh, the whole point on it."""
  by_algorithm = dict(config.get("options_by_algorithm", None) or {})
  for point in points:
    name, n = point["algorithm"], point["num_workers"]
    where = f"options_by_algorithm.{name}" if name in by_algorithm else "algorithm_options"
    with library_errors(where):
      _spec(name, num_workers=n, algorithm_options=options_for(config, name, n))
  for point in points if mesh is not None else ():
    with library_errors("mesh"):
      build_run_spec(config, point, UNKNOWN_SIZE, mesh, timing)


def check_batch_size(config, dataset) -> None:
  """The batch fits the loaded training set."""
  with library_errors("batch_size"):
    _spec(config.algorithms[0], batch_size=config.batch_size, num_examples=dataset.num_train,
          algorithm_options=options_for(config, config.algorithms[0], 1))


def check_memory(config, points, dataset, mesh) -> None:
  """Every point's memory estimate (``dana_jax.check_size``) before the first run, and its
  timing trace's length (``dana_jax.check_timing``): a sweep that cannot fit fails at
  once, naming the N, not an hour in."""
  timing = build_timing(config)
  for point in points:
    spec = build_run_spec(config, point, dataset.num_train, mesh, timing)
    model = build_model(config, dataset.input_shape, dataset.num_classes)
    steps = spec.steps_for_epochs(config.epochs)
    try:  # the state, then the schedules
      host = dataset.train_inputs if isinstance(dataset.train_inputs, dj.HostData) else None
      dj.check_size(spec, model, num_steps=steps, chunk_steps=config.get("chunk_steps"),
                    host_data=host is not None, data_nbytes=_data_nbytes(dataset),
                    example_nbytes=None if host is None else host.example_nbytes())
    except MemoryError as e:
      field, value = (("epochs", config.epochs) if str(e).startswith("num_steps=")
                      else ("num_workers", point["num_workers"]))
      raise validate.ConfigError(
          f"config.{field}={value} is not allowed for {point['algorithm']} at N = "
          f"{point['num_workers']} with {len(config.seeds)} seed(s): "
          f"{str(e).split(' is not allowed: ', 1)[-1]}") from None
    if timing.jobs_available(point["num_workers"]) is not None:  # a trace: every step covered
      with library_errors("timing"):
        dj.check_timing(spec, steps)


def _data_nbytes(dataset) -> int:
  """The bytes of the training arrays kept on the device (0 for host data)."""
  if isinstance(dataset.train_inputs, dj.HostData):
    return 0
  return int(dataset.train_inputs.nbytes) + int(dataset.train_labels.nbytes)


def _data_field(config) -> str:
  """The config field that says where the data came from (for a message about its content)."""
  if config.dataset == "fashion_mnist" and config.get("idx_dir"):
    return "idx_dir"
  return "data_dir" if config.get("data_dir") else "dataset"


def check_dataset(config, dataset) -> None:
  """The loaded data and the model checked together, before any run directory is written.

  The model's output width must be ``dataset.num_classes`` (256 byte classes for a
  language model); every set (train, test, train-error subset) must have finite inputs,
  integer labels in [0, C) of the model's label shape, and the evaluation sets examples of
  the shape the model is trained on (``dataset.input_shape``). Host data (ImageNet) is
  only checked for the model's width: its examples are read batch by batch. Each mistake
  is one :class:`~experiments.validate.ConfigError` naming ``config.model`` or the data's field.
  """
  import jax
  import jax.numpy as jnp

  from dana_jax.engine import HostData
  from dana_jax.engine import compatibility as checks

  model = build_model(config, dataset.input_shape, dataset.num_classes)
  classes = dataset.num_classes
  x = dataset.train_inputs
  dtype = jnp.float32 if isinstance(x, HostData) else x.dtype
  example = jax.ShapeDtypeStruct((1, *dataset.input_shape), dtype)
  try:
    out = checks.output_spec(model, example)
  except Exception as e:  # a model's tracing raises any kind
    validate.fail("model", config.model, f"it cannot be applied to examples of shape "
                  f"{tuple(dataset.input_shape)} ({type(e).__name__}: "
                  f"{(str(e).strip().splitlines() or [''])[0][:200]})")
  shape = getattr(out, "shape", None)  # a model returning a tree of arrays: no width
  if shape is None or len(shape) < 2:  # a scalar, one number per example, or a tree
    validate.fail("model", config.model, "its output for a batch of 1 example is "
                  + (f"of shape {tuple(shape)}" if shape is not None else f"a {type(out).__name__}")
                  + f": need an array of shape (batch, …, {classes}), one output per class of "
                  f"{config.dataset}")
  width = int(shape[-1])
  if width != classes:
    validate.fail("model", config.model, f"its output width is {width}: need one output per "
                  f"class, {classes} for {config.dataset}")
  field = _data_field(config)
  sets = [("train", (x, dataset.train_labels), build_augmentation(config), None),
          ("test", dataset.eval_data, None, dataset.input_shape),
          ("train_eval", dataset.train_eval_data, None, dataset.input_shape)]
  for what, data, augment, shape in sets:
    if data is None or isinstance(data, HostData) or isinstance(data[0], HostData):
      continue
    problem = checks.find_problem(model, *data, num_classes=classes, what=what,
                                  augment=augment, example_shape=shape)
    if problem is not None:
      validate.fail(field, config.get(field),
                    f"{problem.subject} {problem.shown}: {problem.allowed}")
