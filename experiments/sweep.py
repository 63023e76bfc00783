"""A sweep: its points, the order of checks before any of them runs, and the loop.

Each run writes ``config.json``, ``fingerprint.json`` (what determines its
numbers), ``metrics.jsonl`` (one object per chunk and seed, slash-namespaced
keys) and ``summary.json`` into its own directory; a finished run of the same
fingerprint is skipped when the sweep is re-run, one of another is refused, and
one sweep at a time holds a work directory (:mod:`experiments.rundir`).

With ``config.mesh`` the replicas and a block's gradients are split over
devices, and with ``config.distributed`` over the processes of a TPU slice or
cluster (``experiments/configs/common.py``); every process runs the same
sweep and only process 0 writes.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import time

import numpy as np

import dana_jax as dj
from experiments import devices, preflight, registry, rundir, runwriter, validate
from experiments.builders import build_run_spec, build_simulator
from experiments.datasets import load_data
from experiments.point import run_point


def _own(config, algorithm, key, default):
  """``options_by_algorithm[algorithm][key]`` (its own η or γ), or ``default``."""
  return ((config.get("options_by_algorithm", None) or {}).get(algorithm, None)
          or {}).get(key, default)


def _cell(algorithm, n, lr, m, grid) -> dict:
  name = f"{algorithm}_N{n}" + (f"_lr{lr:g}_m{m:g}" if grid else "")
  return {"algorithm": algorithm, "num_workers": n, "learning_rate": lr, "momentum": m,
          "name": name}


def sweep_points(config) -> list[dict]:
  """The simulations of a sweep: each runs its ``cells`` × seeds as replicas of one program.

  A cell is one (η, γ) setting and one run directory. The main sweep has one
  cell per (algorithm, N); the grid sweep puts the whole η × γ grid of an
  (algorithm, N) into one simulation.
  """
  lr, m = config.learning_rate, config.momentum
  if config.sweep == "main":
    points = [[_cell(a, n, _own(config, a, "learning_rate", lr), _own(config, a, "momentum", m),
                     False)] for a, n in ([(config.baseline, 1)] if config.baseline else [])
              + [(a, n) for a in config.algorithms for n in config.num_workers]]
  elif config.sweep == "grid":
    points = [[_cell(a, n, g_lr, g_m, True) for g_lr in config.grid_learning_rates
               for g_m in config.grid_momenta]
              for a in config.algorithms for n in config.num_workers]
  else:
    raise ValueError(f"config.sweep={config.sweep!r} is not allowed: choose one of "
                     f"{registry.SWEEPS}.")
  return [{"algorithm": cells[0]["algorithm"], "num_workers": cells[0]["num_workers"],
           "name": cells[0]["name"] if len(cells) == 1 else
           f"{cells[0]['algorithm']}_N{cells[0]['num_workers']} grid of {len(cells)}",
           "cells": cells} for cells in points]


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
  sim = build_simulator(config, point, dataset, mesh)
  dj.simulate(sim, steps, chunk_steps=steps, progress=False)  # compiles
  began = time.perf_counter()
  dj.simulate(sim, steps, chunk_steps=steps, progress=False)
  per_step = (time.perf_counter() - began) / steps
  total = sum(build_run_spec(config, p, dataset.num_train, mesh).steps_for_epochs(config.epochs)
              for p in points)
  return {"seconds_per_step": per_step, "steps": total, "seconds": per_step * total,
          "point": point["name"]}


def run_sweep(config, workdir, verbosity: int = 0) -> list[dict]:
  """Every point of ``config``'s sweep, in order; finished points are skipped. Prints one
  line per point (finished or skipped) and, while it runs, one progress bar.

  Everything is checked before anything is compiled or written: the experiment's
  own fields (:mod:`experiments.validate`), the work directory, then what goes to
  dana_jax by dana_jax once jax has started (:mod:`experiments.preflight`). Then the
  sweep holds the work directory's lock (:func:`rundir.sweep_lock`) and surveys its
  run directories (:func:`rundir.survey`): runs of another fingerprint refuse it (or,
  with ``config.rerun_changed``, run again), damaged files are set aside and their
  points re-run."""
  del verbosity  # logging is set up by experiments.main
  workdir = pathlib.Path(workdir)
  validate.validate_config(config)
  preflight.check_workdir(workdir)
  preflight.check_tensorboard(config)
  points = sweep_points(config)
  mesh = devices.setup_devices(config)
  preflight.check_with_library(config, points, mesh)
  dataset = load_data(config)
  preflight.check_dataset(config, dataset)
  preflight.check_batch_size(config, dataset)
  fresh = not devices.agreed(workdir.exists())
  if fresh:  # refused before the lock makes the directory
    preflight.check_memory(config, points, dataset, mesh)
  with rundir.sweep_lock(workdir) if devices.writer() else contextlib.nullcontext() as held:
    config = _without_unshared_checkpoints(config, workdir, held)
    done = survey_workdir(config, points, workdir, rundir.data_identity(config, dataset))
    if not fresh:
      preflight.check_memory(config, [p for p in points if p["name"] not in done], dataset,
                             mesh)
    return _run_points(config, points, done, workdir, dataset, mesh)


def _without_unshared_checkpoints(config, workdir, held):
  """``config``, without checkpoints where the processes do not share the work directory
  (``checkpoint_every_epochs`` is run-independent: the fingerprints stay)."""
  if not config.get("checkpoint_every_epochs") or rundir.shared_by_processes(workdir, held):
    return config
  if devices.writer():
    print(f"note: the processes do not share --workdir={str(workdir)!r}: no checkpoints "
          "in this sweep (a kill loses its running points; a shared disk resumes them)",
          flush=True)
  config = config.copy_and_resolve_references()
  config.checkpoint_every_epochs = 0.0
  return config


def _run_points(config, points, done, workdir, dataset, mesh) -> list[dict]:
  """Each point in order, one line each; run directories are made when their run starts."""
  summaries = []
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


def survey_workdir(config, points, workdir: pathlib.Path, data: dict) -> set:
  """The names of the points already finished in ``workdir`` by this configuration.

  Run directories of another fingerprint refuse the sweep (one line: the fields
  that differ, and the two ways on), or, with ``config.rerun_changed``, are
  deleted so their points run again; damaged files are handled by
  :func:`rundir.survey`, which says what it did in one note line each.
  """
  refusal, done, changed = None, set(), {}
  if devices.writer():
    found = rundir.survey(workdir, points,
                          [runwriter.run_fingerprints(config, p, data) for p in points],
                          lambda run_dir, cell: runwriter.write_config(run_dir, config, cell))
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
  if devices.agreed(refusal is not None):
    raise validate.ConfigError(refusal or "process 0 refused the work directory (its error "
                               "line says why)")
  return {p["name"] for p in points if devices.agreed(p["name"] in done)}
