"""Writing a run directory: ``config.json``, ``fingerprint.json``, ``metrics.jsonl`` (and
TensorBoard events), ``summary.json`` and ``final_params.npz``.

Reading them back is :mod:`experiments.runfiles` and :mod:`experiments.rundir`.
A run's summary is written whole or not at all (:func:`write_atomically`): a run
is finished exactly when its summary can be read.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import time

import jax
import numpy as np

import dana_jax as dj
from experiments import rundir
from experiments.builders import options_for


def write_atomically(path: pathlib.Path, text: str) -> None:
  """Writes ``path`` whole or not at all (a full disk leaves the old file or none)."""
  tmp = path.with_name(path.name + ".tmp")
  try:
    tmp.write_text(text)
    tmp.replace(path)
  finally:
    tmp.unlink(missing_ok=True)


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


def run_fingerprints(config, point: dict, data: dict) -> list[dict]:
  """The fingerprint of each run (cell) of ``point`` (:func:`rundir.fingerprint`)."""
  fields = config.to_dict()
  options = options_for(fields, point["algorithm"], point["num_workers"])
  return [rundir.fingerprint(fields, c, options, data) for c in point["cells"]]


def checkpoint_meta(config, point: dict | None = None, data: dict | None = None) -> dict:
  """The fields a checkpoint must match to be resumed: with ``point`` (and ``data``,
  :func:`rundir.data_identity`), the fingerprint of each of its runs (``<run>/<field>``),
  so that a change to another point of the sweep leaves it resumable; without, the
  config fields but :data:`rundir.RUN_INDEPENDENT`."""
  if point is None:
    return {k: v for k, v in config.to_dict().items() if k not in rundir.RUN_INDEPENDENT}
  return {f"{c['name']}/{k}": v
          for c, fields in zip(point["cells"], run_fingerprints(config, point, data or {}),
                               strict=True) for k, v in fields.items()}


def row_names(model, inputs, labels) -> tuple[str, ...]:
  """The keys of every ``metrics.jsonl`` row of a run: the library's per-chunk entries
  (``dana_jax.metric_names()``) and evaluation's ``test/<m>`` and ``train/<m>`` of the
  model's own metrics, traced (not run) on one example of ``inputs``, ``labels``."""
  import jax.numpy as jnp

  from dana_jax.engine import compatibility, loop
  example = jax.ShapeDtypeStruct((1, *np.shape(inputs)[1:]), jnp.asarray(inputs[:1]).dtype)
  target = jax.ShapeDtypeStruct((1, *np.shape(labels)[1:]), jnp.asarray(labels[:1]).dtype)
  outputs = compatibility.output_spec(model, example)
  measured = jax.eval_shape(model.metrics or loop.classification_metrics, outputs, target)
  return tuple(dj.metric_names()) + tuple(f"{where}/{name}" for where in ("test", "train")
                                          for name in measured)


class MetricsWriter:
  """The ``callback`` of ``dana_jax.simulate`` for one point: each chunk's record as one
  ``metrics.jsonl`` row per seed (and TensorBoard scalars), and each seed's first
  non-finite chunk (its step and metrics).

  ``metric_names``: the keys every row carries (NaN where one does not apply: no gap
  for SSGD, no evaluation in a chunk between evaluations), so every run's rows have
  the same keys; the library declares them (``dana_jax.METRICS``).
  """

  def __init__(self, workdir: pathlib.Path, cells: list, replicas: list, seeds: list,
               metric_names, *, files: bool, tensorboard: bool):
    self.replicas, self.seeds, self.names = replicas, seeds, tuple(metric_names)
    self.diverged_at = [None] * len(replicas)
    self.at_divergence = [None] * len(replicas)  # a seed's chunk metrics where it diverged
    # Closed by close(), after the simulation.
    self.logs = ([open(workdir / c["name"] / "metrics.jsonl", "w") for c in cells]
                 if files else [])
    self.boards = None
    if tensorboard and files:
      from experiments import tensorboard as tb
      for c in cells:  # a resumed run replays its whole history: no duplicate points
        shutil.rmtree(workdir / c["name"] / "tensorboard", ignore_errors=True)
      self.boards = tb.Writers([workdir / c["name"] for c in cells], seeds)

  def __call__(self, record) -> None:
    for r, rep in enumerate(record["replicas"][:len(self.replicas)]):
      if rep["nonfinite"] and self.diverged_at[r] is None:
        self.diverged_at[r] = record["step"]
        self.at_divergence[r] = {k: v for k, v in rep.items() if k != "lag/hist"}
      row = {"step": record["step"], "epoch": record["epoch"], "seed": self.replicas[r][1],
             "perf/examples_per_second": record["examples_per_second"],
             **dict.fromkeys(self.names, float("nan")), **rep}
      if self.logs:
        self.logs[r // len(self.seeds)].write(json.dumps(row) + "\n")
      if self.boards is not None:
        self.boards.write(r // len(self.seeds), self.replicas[r][1], row)
    for log in self.logs:
      log.flush()

  def close(self) -> None:
    for log in self.logs:
      log.close()
    if self.boards is not None:
      self.boards.close()
