"""Shared driver: one simulation per sweep point, seeds on the engine's replica axis.

Each run writes ``config.json``, ``fingerprint.json`` (what determines its
numbers), ``metrics.jsonl`` (one object per chunk and seed, slash-namespaced
keys) and ``summary.json`` into its own directory; a finished run of the same
fingerprint is skipped when the sweep is re-run, one of another is refused, and
one sweep at a time holds a work directory (:mod:`experiments.rundir`). A seed
whose loss or parameters become non-finite is recorded as diverged, with the
step, and the sweep goes on; one that stays finite but stops learning (train
error at chance from some evaluation to the end, :func:`stopped_learning_at`)
is recorded as failed, with the epoch, and counted apart from the diverged.

With ``config.mesh`` the replicas and a block's gradients are split over
devices, and with ``config.distributed`` over the processes of a TPU slice or
cluster (``experiments/configs/common.py``); every process runs the same
sweep and only process 0 writes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import pathlib
import shutil
import sys
import time
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

import dana_jax as dj
from dana_jax import checkpoint, data, transformer
from dana_jax.engine import batches_per_step
from experiments import registry, rundir, validate


class Dataset(NamedTuple):
  """What a sweep trains and evaluates on; inputs are arrays or host data (ImageNet)."""

  train_inputs: Any  # array [n, ...] or a dana_jax.HostData
  train_labels: Any  # array [n], or None with HostData
  eval_data: Any  # (inputs, labels) or a HostData
  train_eval_data: Any  # the same, a subset of the training set
  num_classes: int
  input_shape: tuple  # what the model sees (after augmentation)
  source: Any = None  # where the data came from (files, sizes), for rundir.data_identity

  @property
  def num_train(self) -> int:
    return len(self.train_inputs)


def load_data(config) -> Dataset:
  """The sweep's data: small sets standardized in memory; ImageNet on the host."""
  train_eval = config.get("train_eval_examples", None)
  if config.dataset == "imagenet2012":
    from experiments import imagenet_data

    train, validation, train_subset = imagenet_data.imagenet(
        data_dir=config.get("data_dir"), stored_size=config.stored_size,
        image_size=config.image_size, train_eval_examples=train_eval or 10_000,
        eval_examples=config.get("eval_examples"))
    return Dataset(train, None, validation, train_subset, 1000,
                   (config.image_size, config.image_size, 3))
  if config.dataset in registry.TEXT_DATASETS:  # byte-level next-token windows
    from experiments import text
    splits = text.corpus(config.dataset, config.get("data_dir"))
    with validate.library_check("window"):  # a corpus shorter than one window
      tx, ty = data.windows(data.byte_tokens(splits["train"]), config.window)
      vx, vy = data.windows(data.byte_tokens(splits["valid"]), config.window)
    keep = config.get("max_train_windows") or None  # the first windows of the stream
    tx, ty = tx[:keep], ty[:keep]
    evaluated = config.get("eval_examples") or vx.shape[0]
    train_eval = min(train_eval or tx.shape[0], tx.shape[0])
    return Dataset(tx, ty, (vx[:evaluated], vy[:evaluated]), (tx[:train_eval], ty[:train_eval]),
                   256, tx.shape[1:])
  if config.dataset == "digits":
    tx, ty, vx, vy = data.digits()
    classes = 10
  else:
    from experiments import input_pipeline

    tx, ty, vx, vy = input_pipeline.load(config.dataset, data_dir=config.get("data_dir"),
                                         idx_dir=config.get("idx_dir"))
    tx, vx = tx.astype(np.float32) / 255.0, vx.astype(np.float32) / 255.0
    mean = tx.mean(axis=(0, 1, 2), keepdims=True)
    std = tx.std(axis=(0, 1, 2), keepdims=True)
    tx, vx = (tx - mean) / std, (vx - mean) / std
    classes = input_pipeline.NUM_CLASSES[config.dataset]
  train_eval = tx.shape[0] if train_eval is None else train_eval
  return Dataset(tx, ty, (vx, vy), (tx[:train_eval], ty[:train_eval]), classes, tx.shape[1:])


def command_line() -> str:
  """The command this process runs, as typed (``python -m experiments.digits …``)."""
  import shlex
  argv = list(getattr(sys, "orig_argv", sys.argv))
  return " ".join(["python"] + [shlex.quote(a) for a in argv[1:]])


def run_environment() -> dict:
  """Device, backend and versions of this run, and when it finished (for the report)."""
  device = jax.devices()[0]
  return {"device": device.device_kind, "backend": jax.default_backend(),
          "devices": jax.device_count(), "jax": jax.__version__,
          "python": sys.version.split()[0], "finished": time.strftime("%Y-%m-%d %H:%M")}


def stopped_learning_at(epochs, train_errors, num_classes: int) -> float | None:
  """The epoch from which a finite run stopped learning, or None.

  A run has failed from epoch e when its train error is at chance at every
  evaluation from e to the end: its accuracy at most min(1.5/C, 1/C + 0.05) for
  C classes (error ≥ 0.85 for ten: a model predicting one class of a balanced
  set has 0.9; ≥ 0.45 for two), e.g. NAG-ASGD at
  large N predicting one class forever. Evaluations without a finite train
  error (none made, or diverged) are skipped; a run with none is not failed.
  """
  threshold = 1.0 - min(1.5 / num_classes, 1.0 / num_classes + 0.05)
  points = [(e, x) for e, x in zip(epochs, train_errors, strict=True)
            if x is not None and np.isfinite(x)]
  since = None
  for epoch, error in points:
    if error >= threshold:
      since = epoch if since is None else since
    else:
      since = None
  return None if since is None else float(since)


def make_model(config, input_shape, num_classes):
  """The engine model of ``config.model``: a built-in (``registry.MODELS``) or a user's
  ``package.module:factory`` (:func:`experiments.registry.model_factory`)."""
  try:
    factory = registry.model_factory(config.model)
  except registry.ModelError as e:
    raise validate.ConfigError(str(e)) from None
  try:
    module = factory(config, num_classes)
  except Exception as e:  # noqa: BLE001 - a user's factory (or a model's field) raises any kind
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
  except Exception as e:  # noqa: BLE001 - a user's module that does not fit the data
    raise validate.ConfigError(f"config.model={config.model!r} is not allowed: initialising "
                               f"it on inputs of shape {tuple(input_shape)} failed "
                               f"({type(e).__name__}: "
                               f"{(str(e).splitlines() or [''])[0]})") from None


def augmentation(config):
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


def timing_model(config):
  kwargs = {}
  if config.timing == "trace":
    kwargs["batch_times"] = np.load(config.timing_trace, allow_pickle=False)
  elif config.get("timing_shape") is not None:
    kwargs["shape"] = config.timing_shape
  if config.get("worker_speed_shape") is not None:
    kwargs["worker_speed_shape"] = config.worker_speed_shape
  return dj.timing.make_timing(config.timing, **kwargs)


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


def sweep_points(config) -> list[dict]:
  """The simulations of a sweep: each runs its ``cells`` × seeds as replicas of one program.

  A cell is one (η, γ) setting and one run directory. The main sweep has one
  cell per (algorithm, N); the grid sweep puts the whole η × γ grid of an
  (algorithm, N) into one simulation.
  """
  def cell(algorithm, n, lr, m, grid):
    name = f"{algorithm}_N{n}" + (f"_lr{lr:g}_m{m:g}" if grid else "")
    return {"algorithm": algorithm, "num_workers": n, "learning_rate": lr, "momentum": m,
            "name": name}

  lr, m = config.learning_rate, config.momentum
  own = lambda a, key, default: (  # noqa: E731 - options_by_algorithm's η / γ
      (config.get("options_by_algorithm", None) or {}).get(a, None) or {}).get(key, default)
  if config.sweep == "main":
    points = [[cell(config.baseline, 1, own(config.baseline, "learning_rate", lr),
                    own(config.baseline, "momentum", m), False)]] if config.baseline else []
    points += [[cell(a, n, own(a, "learning_rate", lr), own(a, "momentum", m), False)]
               for a in config.algorithms for n in config.num_workers]
  elif config.sweep == "grid":
    points = [[cell(a, n, g_lr, g_m, True) for g_lr in config.grid_learning_rates
               for g_m in config.grid_momenta]
              for a in config.algorithms for n in config.num_workers]
  else:
    raise ValueError(f"config.sweep={config.sweep!r} is not allowed: choose one of "
                     f"{registry.SWEEPS}.")
  return [{"algorithm": cells[0]["algorithm"], "num_workers": cells[0]["num_workers"],
           "name": cells[0]["name"] if len(cells) == 1 else
           f"{cells[0]['algorithm']}_N{cells[0]['num_workers']} grid of {len(cells)}",
           "cells": cells} for cells in points]


def writer() -> bool:
  """Whether this process writes results (process 0 of a multi-process run)."""
  return jax.process_index() == 0


def agreed(value: bool) -> bool:
  """Process 0's ``value`` on every process (each may see a different disk)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils

  return bool(multihost_utils.broadcast_one_to_all(np.asarray(value)))


def setup_devices(config):
  """Starts ``jax.distributed`` if configured; returns the sweep's mesh (None: one device)."""
  dist = config.get("distributed")
  if dist is not None and dist.initialize and not jax.distributed.is_initialized():
    kwargs = distributed_arguments(dist)
    # CPU processes talk through gloo; GPU and TPU ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
      jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError) as e:  # jax's refusals: what is missing, or too late
      raise validate.ConfigError(
          f"config.distributed.initialize=True failed: {str(e).splitlines()[0]} (set "
          "config.distributed.coordinator_address, num_processes and process_id, or run "
          "without config.distributed.initialize)") from None
  mesh = config.get("mesh")
  host = config.get("host_devices", 0)
  if host and jax.default_backend() == "cpu" and jax.local_device_count() != host:
    raise validate.ConfigError(
        f"config.host_devices={host} is not in effect: jax already started with "
        f"{jax.local_device_count()} CPU devices. Set XLA_FLAGS="
        f"--xla_force_host_platform_device_count={host} before jax is imported (python -m "
        "experiments.<name> does this itself).")
  if mesh is None:
    return None
  with validate.library_check("mesh"):
    mesh = dj.make_mesh(replicas=mesh.replicas, workers=mesh.workers)
  return None if mesh.size == 1 else mesh


# How long a process other than 0 waits for the coordinator (process 0) to listen; jax
# itself would wait 300 s and then abort the process.
COORDINATOR_WAIT_S = 60.0


def distributed_arguments(dist) -> dict:
  """``jax.distributed.initialize``'s arguments from ``config.distributed``, checked first
  where jax would hang or abort the process: without a coordinator address there must be a
  cluster jax detects (SLURM, Open MPI, a TPU slice, …); with one, its host must resolve,
  its port be a port, and a process other than 0 must reach it within
  ``COORDINATOR_WAIT_S``. Every refusal is one ConfigError line."""
  import socket
  kwargs = {}
  if dist.num_processes:
    kwargs["num_processes"] = dist.num_processes
  if dist.process_id >= 0:
    kwargs["process_id"] = dist.process_id
  field = f"config.distributed.coordinator_address={dist.coordinator_address!r}"
  if not dist.coordinator_address:
    if not _cluster_detected():
      raise validate.ConfigError(
          "config.distributed.initialize=True is not allowed here: no cluster was detected "
          "(SLURM, Open MPI, a TPU slice or Kubernetes); give "
          "config.distributed.coordinator_address=HOST:PORT, num_processes and process_id, "
          "or leave initialize=False for one process")
    _require_jax_not_started()
    return kwargs
  host, _, port = dist.coordinator_address.rpartition(":")
  if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
    raise validate.ConfigError(f"{field} is not allowed: need HOST:PORT with a port in "
                               "1 … 65535")
  if not dist.num_processes or dist.process_id < 0:
    raise validate.ConfigError(
        f"config.distributed.num_processes={dist.num_processes} and process_id="
        f"{dist.process_id} are not allowed with a coordinator address: give both "
        "(0 ≤ process_id < num_processes)")
  try:
    socket.getaddrinfo(host.strip("[]"), int(port))
  except (OSError, UnicodeError) as e:
    raise validate.ConfigError(f"{field} is not allowed: its host does not resolve "
                               f"({e})") from None
  _require_jax_not_started()
  if dist.process_id != 0:
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
      try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
        break
      except OSError as e:
        if time.monotonic() > deadline:
          raise validate.ConfigError(
              f"{field} is not allowed: process 0 does not answer there after "
              f"{COORDINATOR_WAIT_S:.0f} s ({e.strerror or e}); start process 0 first, with "
              "the same address") from None
        time.sleep(1.0)
  kwargs["coordinator_address"] = dist.coordinator_address
  return kwargs


def _require_jax_not_started() -> None:
  """jax.distributed.initialize must come before jax starts its backends."""
  from jax._src import xla_bridge
  if xla_bridge.backends_are_initialized():
    raise validate.ConfigError(
        "config.distributed.initialize=True is not allowed here: jax has already started in "
        "this process; run the experiment's command (python -m experiments.<name>) instead")


def _cluster_detected() -> bool:
  """Whether jax would find a cluster to auto-detect (True where it cannot tell), as
  ``jax.distributed.initialize`` without arguments looks for one."""
  import os
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return True
  try:
    from jax._src import clusters
    kinds = clusters.ClusterEnv._cluster_types
  except (ImportError, AttributeError):
    return True
  for kind in kinds:
    try:
      if not getattr(kind, "opt_in_only_method", False) and kind.is_env_present():
        return True
    except Exception:  # noqa: BLE001 - a detector that cannot run here detects nothing
      continue
  return False


def replicas_of(config, cells, mesh) -> tuple[list, list]:
  """The (cell, seed) of every replica, and of every simulated one.

  Replica r is cell r // S, seed r % S; repeats of the last replica fill the
  mesh's replica axis (they are simulated, not written).
  """
  replicas = [(c, s) for c in cells for s in config.seeds]
  per_device = 1 if mesh is None else mesh.shape["replicas"]
  return replicas, replicas + [replicas[-1]] * (-len(replicas) % per_device)


class _Unread(dj.HostData):
  """A training set of ``n`` examples that is never loaded: a Simulator without data."""

  def __init__(self, n: int):
    self.n = n

  def __len__(self):
    return self.n


def library_probe(algorithm, *, num_examples: int = sys.maxsize, **simulator_args) -> None:
  """Builds (and drops) a Simulator of ``simulator_args`` without a model or data, so that
  dana_jax checks them; the arguments not given are ones it accepts."""
  args = {"num_workers": 1, "batch_size": 1, **simulator_args}
  dj.Simulator(None, algorithm, _Unread(num_examples), None, **args)


def _require_algorithm(name, config):
  """A registered algorithm whose own options it takes, each value as its option allows
  (checked even where the sweep leaves it out: a preset's options for it are then unused,
  but a mistake in them is still one).  Values of the form ``"<a>*N"`` are checked at
  N = 1; the options shared through ``algorithm_options`` are checked with the algorithms
  of the sweep (:func:`check_with_library`)."""
  if name not in dj.ALGORITHMS:
    raise validate.ConfigError(f"config.options_by_algorithm.{name} is not allowed: "
                               f"{name!r} is not an algorithm; choose from "
                               f"{sorted(dj.ALGORITHMS)}")
  mine = (config.get("options_by_algorithm", None) or {}).get(name, None) or {}
  own = {k: v for k, v in dict(mine).items() if k not in ("learning_rate", "momentum")}
  with validate.library_check(f"options_by_algorithm.{name}"):
    dj.get_algorithm(name).check_options(options_for({"options_by_algorithm": {name: own}},
                                                     name, 1))
    hyper = {k: v for k, v in dict(mine).items() if k in ("learning_rate", "momentum")}
    if hyper:
      library_probe("asgd", hyperparams=dj.Hyperparams(**hyper))


def check_with_library(config, points, mesh) -> None:
  """dana_jax's own checks of what the sweep hands it, before anything is compiled or written.

  Each config field goes to the library alone (the other arguments at values it
  accepts), so a refusal names the field that caused it, as a ConfigError; then
  each point's algorithm, N, execution and replicas go together on the mesh.
  The batch size against the data is checked once the data is loaded (run_sweep).
  """
  check = validate.library_check
  options = dict(config.get("algorithm_options", None) or {})
  by_algorithm = dict(config.get("options_by_algorithm", None) or {})
  for field, names in (("baseline", [config.baseline] if config.get("baseline") else []),
                       ("algorithms", config.algorithms)):
    for name in names:
      with check(field):
        dj.get_algorithm(name)
      try:
        with check("algorithm_options"):
          dj.optimizer(name, **options)  # the options' names and values
      except validate.ConfigError as e:
        raise validate.ConfigError(
            f"{e} algorithm_options go to every algorithm of the sweep (the baseline too); "
            "for one algorithm use --config.options_by_algorithm.ALG.NAME=VALUE") from None
  for name in by_algorithm:
    _require_algorithm(name, config)
  if config.get("timing_shape") is not None:  # first: heterogeneous(shape=0) divides by it
    with check("timing_shape"):
      dj.GammaTiming(shape=config.timing_shape).validate(1)
  if config.get("worker_speed_shape") is not None:
    with check("worker_speed_shape"):
      try:
        dj.GammaTiming(shape=1.0, worker_speed_shape=config.worker_speed_shape).validate(1)
      except ValueError as e:  # the library names its own field, timing.worker_speed_shape
        raise ValueError(str(e).replace("timing.worker_speed_shape", "worker_speed_shape",
                                        1)) from None
  timing_field = "timing_trace" if config.timing == "trace" else "timing_shape"
  with check("timing", timing_field):
    timing = timing_model(config)
  workers = list(dict.fromkeys(p["num_workers"] for p in points))
  probes = [
      ("batch_size", dict(batch_size=config.batch_size)),
      ("execution", dict(execution=config.execution)),
      ("replica_execution", dict(replica_execution=config.replica_execution)),
      ("block_size", dict(block_size=config.get("block_size"))),
      ("learning_rate", dict(hyperparams=dj.Hyperparams(learning_rate=config.learning_rate))),
      ("momentum", dict(hyperparams=dj.Hyperparams(momentum=config.momentum))),
      ("weight_decay", dict(hyperparams=dj.Hyperparams(weight_decay=config.weight_decay))),
      *[(timing_field, dict(num_workers=n, timing=timing)) for n in workers],
  ]
  if config.sweep == "grid":
    probes += [("grid_learning_rates", dict(hyperparams=dj.Hyperparams(learning_rate=v)))
               for v in config.grid_learning_rates]
    probes += [("grid_momenta", dict(hyperparams=dj.Hyperparams(momentum=v)))
               for v in config.grid_momenta]
  for n in workers:  # N alone (any algorithm takes any N ≥ 1)
    with check("num_workers"):
      library_probe("asgd", num_workers=n)
  for point in points:  # then the per-algorithm options (schedule rules too), at each N
    name, n = point["algorithm"], point["num_workers"]
    own = {k: v for k, v in dict(by_algorithm.get(name, None) or {}).items()
           if k in ("learning_rate", "momentum")}  # its own η / γ; the sweep's: below
    hp = {"hyperparams": dj.Hyperparams(**own)} if own else {}
    with check(f"options_by_algorithm.{name}" if name in by_algorithm else "algorithm_options"):
      library_probe(name, num_workers=n, algorithm_options=options_for(config, name, n), **hp)
  first = config.algorithms[0]
  for field, args in probes:
    with check(field):
      library_probe(first, algorithm_options=options_for(config, first,
                                                         args.get("num_workers", 1)), **args)
  for point in points if mesh is not None else ():
    _, simulated = replicas_of(config, point["cells"], mesh)
    with check("mesh"):
      library_probe(point["algorithm"], num_workers=point["num_workers"],
                    batch_size=config.batch_size, seeds=[s for _, s in simulated],
                    execution=config.execution, mesh=mesh,
                    replica_execution=config.replica_execution,
                    algorithm_options=options_for(config, point["algorithm"],
                                                  point["num_workers"]))


def finished(point: dict, workdir) -> bool:
  """Whether every run of a sweep point has a readable summary (then it is skipped; the
  sweep first checks that the runs are of its configuration, :func:`rundir.survey`)."""
  return agreed(all(rundir.summary(pathlib.Path(workdir) / c["name"]) is not None
                    for c in point["cells"]))


def run_fingerprints(config, point: dict, data: dict) -> list[dict]:
  """The fingerprint of each run (cell) of ``point`` (:func:`rundir.fingerprint`)."""
  fields = config.to_dict()
  options = options_for(fields, point["algorithm"], point["num_workers"])
  return [rundir.fingerprint(fields, c, options, data) for c in point["cells"]]


def simulator(config, point: dict, dataset, mesh=None):
  """The Simulator of one sweep point: its cells × seeds as replicas of one program."""
  algorithm, num_workers = point["algorithm"], point["num_workers"]
  model = make_model(config, dataset.input_shape, dataset.num_classes)
  _, simulated = replicas_of(config, point["cells"], mesh)
  options = options_for(config, algorithm, num_workers)
  # G gradients per round, H batches per job (docs/spec.md §2.9, §6.5).
  timing = timing_model(config)
  steps_per_epoch = (dataset.num_train // config.batch_size) / batches_per_step(
      algorithm, num_workers, options, timing, [s for _, s in simulated])
  schedule = functools.partial(dj.paper_learning_rate, steps_per_epoch=steps_per_epoch,
                               num_workers=num_workers, warmup_epochs=config.warmup_epochs,
                               decay_epochs=tuple(config.decay_epochs))
  # config.block_size caps K for the whole sweep (K ≤ N, e.g. N = 1 for the baseline).
  block_size = None if config.get("block_size") is None else min(config.block_size,
                                                                   num_workers)
  sim = dj.Simulator(model, algorithm, dataset.train_inputs, dataset.train_labels,
                     num_workers=num_workers,
                     batch_size=config.batch_size, seeds=[s for _, s in simulated],
                     hyperparams=dj.Hyperparams([c["learning_rate"] for c, _ in simulated],
                                                [c["momentum"] for c, _ in simulated],
                                                config.weight_decay),
                     learning_rate_schedule=schedule, timing=timing,
                     execution=config.execution, block_size=block_size,
                     replica_execution=config.replica_execution,
                     augment=augmentation(config),
                     algorithm_options=options, mesh=mesh)
  return sim


def estimate_runtime(config, dataset, mesh=None, steps: int = 20) -> dict:
  """A rough runtime of the whole sweep, measured, before running it.

  Times ``steps`` master steps of the sweep's largest-N point (after one call
  that compiles) and multiplies by the master steps of every point. Points
  differ in cost (N, the algorithm, K), and compilation and evaluation are not
  counted, so this is an estimate of the order, not a prediction. Returns
  ``{"seconds_per_step", "steps", "seconds", "point"}``.
  """
  points = sweep_points(config)
  point = max(points, key=lambda p: (p["num_workers"], p["algorithm"] != "ssgd"))
  sim = simulator(config, point, dataset, mesh)
  dj.simulate(sim, steps, chunk_steps=steps, progress=False)  # compiles
  began = time.perf_counter()
  dj.simulate(sim, steps, chunk_steps=steps, progress=False)
  per_step = (time.perf_counter() - began) / steps
  total = sum(simulator(config, p, dataset, mesh).steps_for_epochs(config.epochs)
              for p in points)
  return {"seconds_per_step": per_step, "steps": total, "seconds": per_step * total,
          "point": point["name"]}


def run_point(config, point: dict, workdir: pathlib.Path, dataset, mesh=None, *,
              rerun: bool = False) -> list[dict]:
  """Simulates every cell × seed of a sweep point in one program; one summary per cell.

  A finished point's summaries are read back, unless ``rerun`` (a point whose
  files :func:`rundir.survey` found damaged): then it runs again, from its
  checkpoint if it has a good one (a damaged one is dropped with a note)."""
  cells = point["cells"]
  paths = [workdir / c["name"] / "summary.json" for c in cells]
  if not rerun and finished(point, workdir):
    return [rundir.summary(p.parent) for p in paths]
  sim = simulator(config, point, dataset, mesh)
  seeds = list(config.seeds)
  replicas, simulated = replicas_of(config, cells, mesh)
  options = options_for(config, point["algorithm"], point["num_workers"])
  every = config.get("eval_every_epochs")  # None: after every chunk
  steps_of = lambda epochs: None if epochs is None else max(  # noqa: E731
      1, round(epochs * sim.spec.steps_per_epoch))
  eval_every_steps = steps_of(every)
  # One checkpoint per simulation (all its cells), in its first cell's directory.
  checkpoint_every = config.get("checkpoint_every_epochs") or None  # 0: none
  checkpoint_dir = None if checkpoint_every is None else workdir / cells[0]["name"] / "checkpoint"
  data = rundir.data_identity(config, dataset)
  logs = []
  for c, fingerprint in zip(cells, run_fingerprints(config, point, data) if writer() else (),
                            strict=False):
    run_dir = workdir / c["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").unlink(missing_ok=True)  # finished again when it is rewritten
    write_config(run_dir, config, c)
    rundir.write_fingerprint(run_dir, fingerprint)
    logs.append(open(run_dir / "metrics.jsonl", "w"))  # closed after the simulation
  boards = None
  if config.get("tensorboard") and writer():
    from experiments import tensorboard
    for c in cells:  # a resumed run replays its whole history: no duplicate points
      shutil.rmtree(workdir / c["name"] / "tensorboard", ignore_errors=True)
    boards = tensorboard.Writers([workdir / c["name"] for c in cells], seeds)
  began = time.perf_counter()
  diverged_at = [None] * len(replicas)
  at_divergence = [None] * len(replicas)  # a seed's chunk metrics where it diverged

  def write(record):
    for r, rep in enumerate(record["replicas"][:len(replicas)]):
      if rep["nonfinite"] and diverged_at[r] is None:
        diverged_at[r] = record["step"]
        at_divergence[r] = {k: v for k, v in rep.items() if k != "lag/hist"}
      row = {"step": record["step"], "epoch": record["epoch"], "seed": replicas[r][1],
             "perf/examples_per_second": record["examples_per_second"],
             **dict.fromkeys(METRIC_KEYS, float("nan")), **rep}  # the same keys in every run
      if logs:
        logs[r // len(seeds)].write(json.dumps(row) + "\n")
      if boards is not None:
        boards.write(r // len(seeds), replicas[r][1], row)
    for log in logs:
      log.flush()

  def simulate():
    return dj.simulate(sim, sim.spec.steps_for_epochs(config.epochs),
                       chunk_steps=config.get("chunk_steps"), eval_data=dataset.eval_data,
                       checkpoint_dir=checkpoint_dir,
                       checkpoint_meta=checkpoint_meta(config, point, data),
                       checkpoint_every_steps=steps_of(checkpoint_every),
                       train_eval_data=dataset.train_eval_data,
                       eval_every_steps=eval_every_steps, callback=write)

  try:
    try:
      result = simulate()
    except (checkpoint.DamagedCheckpoint, checkpoint.OtherConfiguration) as e:
      # Raised before any chunk or callback: the run starts afresh, its files as they are.
      print(f"note: {e} Deleted; {point['name']} starts afresh.", flush=True)
      if writer():
        if pathlib.Path(checkpoint_dir).is_dir():
          shutil.rmtree(checkpoint_dir, ignore_errors=True)
        else:  # a file where the checkpoint directory goes (rmtree leaves it)
          pathlib.Path(checkpoint_dir).unlink(missing_ok=True)
      result = simulate()
  finally:
    for log in logs:
      log.close()
    if boards is not None:
      boards.close()
  seconds = time.perf_counter() - began
  # Gathered on every process (a collective), written by process 0.
  final_params = (dj.sharding.to_host(result.state.params)
                  if config.get("save_final_params", False) else None)
  epochs = [h["epoch"] for h in result.history]
  failed = [[None if diverged_at[r] is not None else stopped_learning_at(
      epochs, [h["replicas"][r].get("train/error") for h in result.history],
      dataset.num_classes) for r in range(i * len(seeds), (i + 1) * len(seeds))]
      for i in range(len(cells))]
  summaries = []
  for i, (c, path) in enumerate(zip(cells, paths, strict=True)):
    mine = range(i * len(seeds), (i + 1) * len(seeds))
    last = [result.history[-1]["replicas"][r] for r in mine]
    per_epoch = lambda key, r: [h["replicas"][r].get(key, np.nan)  # noqa: E731
                                for h in result.history]
    summary = {
        **{k: c[k] for k in ("algorithm", "num_workers", "learning_rate", "momentum")},
        "algorithm_options": options,
        "seeds": seeds,
        "final_test_error": [x["test/error"] for x in last],
        "final_train_error": [x["train/error"] for x in last],
        "diverged": [diverged_at[r] is not None for r in mine],
        "diverged_at_step": [diverged_at[r] for r in mine],
        "metrics_at_divergence": [at_divergence[r] for r in mine],
        "failed_from_epoch": failed[i],
        "failed": [e is not None for e in failed[i]],  # never a diverged seed
        "mean_lag": float(np.mean(per_epoch("lag/mean", mine[0]))),
        # Per seed, averaged over logged chunks (epochs).
        "mean_gap_rms": [float(np.mean(per_epoch("gap/rms", r))) for r in mine],
        "mean_normalized_gap": [float(np.mean(per_epoch("gap/normalized", r))) for r in mine],
        "simulated_time": [float(x["time/simulated"]) for x in last],
        "cancelled_jobs": [int(sum(h["replicas"][r]["jobs/cancelled"] for h in result.history))
                           for r in mine],
        "wall_seconds": seconds,
        "command": command_line(),
        "environment": run_environment(),
        "replicas_in_program": len(simulated),
        # What "auto" resolved to (config.json keeps the field as given).
        "execution": sim.spec.execution,
        "replica_execution": None if sim.spec.single else sim.spec.replica_execution,
        "steps": int(result.history[-1]["step"]),
    }
    if writer():
      if final_params is not None:
        save_params(path.parent / "final_params.npz", final_params, mine)
      write_atomically(path, json.dumps(summary, indent=2))  # a run is finished or not
    summaries.append(summary)
  if checkpoint_dir is not None and writer():  # the summaries say the run is finished
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
  return summaries


# Fields that do not change what a run computes: a checkpoint may be resumed with others.
RUN_INDEPENDENT = rundir.RUN_INDEPENDENT


def checkpoint_meta(config, point: dict | None = None, data: dict | None = None) -> dict:
  """The fields a checkpoint must match to be resumed: with ``point`` (and ``data``,
  :func:`rundir.data_identity`), the fingerprint of each of its runs (``<run>/<field>``),
  so that a change to another point of the sweep leaves it resumable; without, the
  config fields but :data:`RUN_INDEPENDENT`."""
  if point is None:
    return {k: v for k, v in config.to_dict().items() if k not in RUN_INDEPENDENT}
  return {f"{c['name']}/{k}": v
          for c, fields in zip(point["cells"], run_fingerprints(config, point, data or {}),
                               strict=True) for k, v in fields.items()}


def write_config(run_dir: pathlib.Path, config, cell: dict) -> None:
  """A run's ``config.json``: the sweep's fields and the run's own (its cell)."""
  write_atomically(run_dir / "config.json",
                   json.dumps({**config.to_dict(), **cell}, indent=2, default=list))


def save_params(path, params, replicas) -> None:
  """The final parameters of ``replicas`` (one seed each) as ``.npz``, one array per leaf.

  ``params``: host arrays stacked over replicas. Keys are the leaves' paths
  (``params/Dense_0/kernel``); each array has a leading axis over the seeds.
  """
  leaves = jax.tree_util.tree_leaves_with_path(params)
  arrays = {jax.tree_util.keystr(k, simple=True, separator="/"): np.asarray(v)[list(replicas)]
            for k, v in leaves}
  np.savez(path, **arrays)


# Every row of every run's metrics.jsonl has these keys (NaN where one does not apply:
# no gap for SSGD, no penalty for ASGD, no evaluation in a chunk between evaluations).
METRIC_KEYS = ("loss/train", "learning_rate", "lag/mean", "lag/max", "gap/rms",
               "gap/normalized", "penalty/mean", "time/simulated", "jobs/cancelled",
               "test/error", "test/loss", "train/error", "train/loss",
               "test/bits_per_token", "train/bits_per_token")


def write_atomically(path: pathlib.Path, text: str) -> None:
  """Writes ``path`` whole or not at all (a full disk leaves the old file or none)."""
  tmp = path.with_name(path.name + ".tmp")
  try:
    tmp.write_text(text)
    tmp.replace(path)
  finally:
    tmp.unlink(missing_ok=True)


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


def check_memory(config, points, dataset, mesh) -> None:
  """Every point's memory estimate (``Simulator.check_memory``) before the first run: a
  sweep that cannot fit fails at once, naming the N, not an hour in."""
  for point in points:
    try:  # dana_jax's size checks (dj.engine.memory.check_size): state, then schedules
      sim = simulator(config, point, dataset, mesh)
      dj.check_size(sim.spec, sim.model, num_steps=sim.spec.steps_for_epochs(config.epochs),
                    chunk_steps=config.get("chunk_steps"), host_data=sim.host_data is not None,
                    data_nbytes=sim.data_nbytes, example_nbytes=None if sim.host_data is None
                    else sim.host_data.example_nbytes())
    except MemoryError as e:
      field, value = (("epochs", config.epochs) if str(e).startswith("num_steps=")
                      else ("num_workers", point["num_workers"]))
      raise validate.ConfigError(
          f"config.{field}={value} is not allowed for {point['algorithm']} at N = "
          f"{point['num_workers']} with {len(config.seeds)} seed(s): "
          f"{str(e).split(' is not allowed: ', 1)[-1]}") from None
    if config.get("timing") == "trace":  # a trace covers every step of the run (or one line)
      with validate.library_check("timing_trace"):
        dj.check_timing(sim.spec, sim.spec.steps_for_epochs(config.epochs))


def run_sweep(config, workdir, verbosity: int = 0) -> list[dict]:
  """Every point of ``config``'s sweep, in order; finished points are skipped. Prints one
  line per point (finished or skipped) and, while it runs, one progress bar.

  Once everything is checked the sweep holds the work directory's lock
  (:func:`rundir.sweep_lock`) and surveys its run directories
  (:func:`rundir.survey`): runs of another fingerprint refuse it (or, with
  ``config.rerun_changed``, run again), damaged files are set aside and their
  points re-run."""
  workdir = pathlib.Path(workdir)
  # Everything is checked before anything is compiled or written: the experiment's
  # own fields here, the rest by dana_jax once jax has started (setup_devices).
  validate.validate_config(config)
  check_workdir(workdir)
  if config.get("tensorboard"):
    from experiments import tensorboard
    if not tensorboard.available():
      raise validate.ConfigError("config.tensorboard=True is not allowed here: tensorboardX "
                                 f"is not installed; {tensorboard.INSTALL}")
  points = sweep_points(config)
  mesh = setup_devices(config)
  check_with_library(config, points, mesh)
  dataset = load_data(config)
  validate.check_dataset(config, dataset)
  with validate.library_check("batch_size"):
    library_probe(config.algorithms[0], batch_size=config.batch_size,
                  num_examples=dataset.num_train,
                  algorithm_options=options_for(config, config.algorithms[0], 1))
  fresh = not agreed(workdir.exists())
  if fresh:  # refused before the lock makes the directory
    check_memory(config, points, dataset, mesh)
  with rundir.sweep_lock(workdir) if writer() else contextlib.nullcontext() as held:
    if config.get("checkpoint_every_epochs") and not rundir.shared_by_processes(workdir, held):
      if writer():
        print(f"note: the processes do not share --workdir={str(workdir)!r}: no checkpoints "
              "in this sweep (a kill loses its running points; a shared disk resumes them)",
              flush=True)
      config = config.copy_and_resolve_references()
      config.checkpoint_every_epochs = 0.0  # run-independent: the fingerprints stay
    done = _survey(config, points, workdir, rundir.data_identity(config, dataset))
    if not fresh:
      check_memory(config, [p for p in points if p["name"] not in done], dataset, mesh)
    summaries = []  # run directories are made when their run starts (parents too)
    for i, point in enumerate(points):
      tag = f"[{i + 1}/{len(points)}] {point['name']}"
      if point["name"] in done:
        summaries.extend(run_point(config, point, workdir, dataset, mesh))  # read back
        print(f"{tag}: skipped: finished", flush=True)
        continue
      began = time.perf_counter()
      got = run_point(config, point, workdir, dataset, mesh, rerun=True)
      summaries.extend(got)
      print(f"{tag}: finished in {time.perf_counter() - began:.0f} s; {result_line(got)}",
            flush=True)
  return summaries


def result_line(summaries: list[dict]) -> str:
  """A point's final test error over its seeds that neither diverged nor failed, and how
  many did: "final test error 2.33% (mean of 2 seeds; 1 diverged)"."""
  errors, diverged, failed = [], 0, 0
  for s in summaries:
    flags = zip(s["final_test_error"], s.get("diverged") or [False] * len(s["seeds"]),
                s.get("failed") or [False] * len(s["seeds"]), strict=True)
    for error, d, f in flags:
      if d or error is None or not np.isfinite(error):
        diverged += 1
      elif f:
        failed += 1
      else:
        errors.append(100 * error)
  counts = "; ".join(f"{k} {what}" for k, what in ((diverged, "diverged"), (failed, "failed"))
                     if k)
  if not errors:
    return (f"every seed diverged ({diverged} of {diverged})" if not failed else
            f"no seed learned ({counts})")
  seeds = f"mean of {len(errors)} seed{'s' if len(errors) > 1 else ''}"
  return f"final test error {np.mean(errors):.2f}% ({seeds}{'; ' + counts if counts else ''})"


def _survey(config, points, workdir: pathlib.Path, data: dict) -> set:
  """The names of the points already finished in ``workdir`` by this configuration.

  Run directories of another fingerprint refuse the sweep (one line: the fields
  that differ, and the two ways on), or, with ``config.rerun_changed``, are
  deleted so their points run again; damaged files are handled by
  :func:`rundir.survey`, which says what it did in one note line each.
  """
  refusal, done, changed = None, set(), {}
  if writer():
    found = rundir.survey(workdir, points, [run_fingerprints(config, p, data) for p in points],
                          lambda run_dir, cell: write_config(run_dir, config, cell))
    for note in found.notes:
      print(f"note: {note}", flush=True)
    done, changed = found.finished, found.changed
    if found.others:
      refusal = rundir.others_message(workdir, found.others)
    elif changed and not config.get("rerun_changed", False):
      refusal = rundir.changed_message(workdir, changed)
    for point in points if refusal is None else ():
      if point["name"] in changed:
        print(f"note: {point['name']}: another configuration's run; deleted to run again "
              "(rerun_changed)", flush=True)
        for c in point["cells"]:
          shutil.rmtree(workdir / c["name"], ignore_errors=True)
  if agreed(refusal is not None):
    raise validate.ConfigError(refusal or "process 0 refused the work directory (its error "
                               "line says why)")
  return {p["name"] for p in points if agreed(p["name"] in done)}
