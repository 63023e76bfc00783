"""Running one sweep point: its cells × seeds as the replicas of one simulation.

A point's run directories are written when it starts (``config.json``,
``fingerprint.json``), its metrics as it runs (:class:`experiments.runwriter.MetricsWriter`),
and one ``summary.json`` per cell when it ends. A seed whose loss or parameters
become non-finite is recorded as diverged, with the step; one that stays finite
but stops learning (:func:`stopped_learning_at`) as failed, with the epoch.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time

import numpy as np

import dana_jax as dj
from dana_jax import checkpoint
from experiments import devices, rundir, runwriter
from experiments.builders import build_simulator, options_for, replicas_of


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


def finished(point: dict, workdir) -> bool:
  """Whether every run of a sweep point has a readable summary (then it is skipped; the
  sweep first checks that the runs are of its configuration, :func:`rundir.survey`)."""
  return devices.agreed(all(rundir.summary(pathlib.Path(workdir) / c["name"]) is not None
                            for c in point["cells"]))


def start_run_dirs(config, point: dict, workdir: pathlib.Path, data: dict) -> None:
  """Each cell's directory with its ``config.json`` and ``fingerprint.json``, and no
  summary (the run is finished again when that is rewritten)."""
  for c, fingerprint in zip(point["cells"], runwriter.run_fingerprints(config, point, data),
                            strict=True):
    run_dir = workdir / c["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").unlink(missing_ok=True)
    runwriter.write_config(run_dir, config, c)
    rundir.write_fingerprint(run_dir, fingerprint)


def _row_names(sim, dataset) -> tuple[str, ...]:
  """The keys of the point's metrics rows, from one example of its evaluation data."""
  data = dataset.eval_data
  inputs, labels = data.load(np.zeros([1], np.int64)) if isinstance(data, dj.HostData) else data
  return runwriter.row_names(sim.model, inputs, labels)


def _simulate_resuming(sim, point, simulate, checkpoint_dir):
  """``simulate()``, from the point's checkpoint if it has a good one; a damaged one or
  another configuration's (raised before any chunk) is deleted, and the run starts afresh."""
  try:
    return simulate()
  except (checkpoint.DamagedCheckpoint, checkpoint.OtherConfiguration) as e:
    print(f"note: {e} Deleted; {point['name']} starts afresh.", flush=True)
    if devices.writer():
      if pathlib.Path(checkpoint_dir).is_dir():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
      else:  # a file where the checkpoint directory goes (rmtree leaves it)
        pathlib.Path(checkpoint_dir).unlink(missing_ok=True)
    return simulate()


def run_point(config, point: dict, workdir: pathlib.Path, dataset, mesh=None, *,
              rerun: bool = False) -> list[dict]:
  """Simulates every cell × seed of a sweep point in one program; one summary per cell.

  A finished point's summaries are read back, unless ``rerun`` (a point whose
  files :func:`rundir.survey` found damaged): then it runs again, from its
  checkpoint if it has a good one (a damaged one is dropped with a note)."""
  cells = point["cells"]
  if not rerun and finished(point, workdir):
    return [rundir.summary(workdir / c["name"]) for c in cells]
  sim = build_simulator(config, point, dataset, mesh)
  replicas, _ = replicas_of(config, cells, mesh)
  spec = sim.spec
  steps_of = lambda epochs: None if epochs is None else max(1, round(epochs * spec.steps_per_epoch))
  # One checkpoint per simulation (all its cells), in its first cell's directory.
  checkpoint_every = config.get("checkpoint_every_epochs") or None  # 0: none
  checkpoint_dir = None if checkpoint_every is None else workdir / cells[0]["name"] / "checkpoint"
  data = rundir.data_identity(config, dataset)
  if devices.writer():
    start_run_dirs(config, point, workdir, data)
  metrics = runwriter.MetricsWriter(workdir, cells, replicas, list(config.seeds),
                                    _row_names(sim, dataset), files=devices.writer(),
                                    tensorboard=bool(config.get("tensorboard")))
  simulate = lambda: dj.simulate(
      sim, spec.steps_for_epochs(config.epochs), chunk_steps=config.get("chunk_steps"),
      eval_data=dataset.eval_data, checkpoint_dir=checkpoint_dir,
      checkpoint_meta=runwriter.checkpoint_meta(config, point, data),
      checkpoint_every_steps=steps_of(checkpoint_every),
      train_eval_data=dataset.train_eval_data,
      eval_every_steps=steps_of(config.get("eval_every_epochs")), callback=metrics)
  began = time.perf_counter()
  try:
    result = _simulate_resuming(sim, point, simulate, checkpoint_dir)
  finally:
    metrics.close()
  summaries = point_summaries(config, point, sim, result, metrics, dataset.num_classes,
                              time.perf_counter() - began)
  _write_summaries(config, point, workdir, result, summaries)
  return summaries


def _write_summaries(config, point, workdir, result, summaries) -> None:
  """Each cell's ``summary.json`` (and ``final_params.npz``); then the point's checkpoint
  goes, the summaries saying the run is finished."""
  seeds = len(config.seeds)
  # Gathered on every process (a collective), written by process 0.
  final_params = (dj.sharding.to_host(result.state.params)
                  if config.get("save_final_params", False) else None)
  if not devices.writer():
    return
  for i, (c, summary) in enumerate(zip(point["cells"], summaries, strict=True)):
    run_dir = workdir / c["name"]
    if final_params is not None:
      runwriter.save_params(run_dir / "final_params.npz", final_params,
                            range(i * seeds, (i + 1) * seeds))
    runwriter.write_atomically(run_dir / "summary.json", json.dumps(summary, indent=2))
  if config.get("checkpoint_every_epochs"):
    shutil.rmtree(workdir / point["cells"][0]["name"] / "checkpoint", ignore_errors=True)


def point_summaries(config, point, sim, result, metrics, num_classes, seconds) -> list[dict]:
  """One summary per cell of a finished simulation: its seeds' final errors, divergence
  and failure, mean lag and gap, simulated time and cancelled jobs, and what ran it."""
  seeds, history = list(config.seeds), result.history
  epochs = [h["epoch"] for h in history]
  per_epoch = lambda key, r: [h["replicas"][r].get(key, np.nan) for h in history]
  options = options_for(config, point["algorithm"], point["num_workers"])
  summaries = []
  for i, c in enumerate(point["cells"]):
    mine = range(i * len(seeds), (i + 1) * len(seeds))
    last = [history[-1]["replicas"][r] for r in mine]
    diverged = [metrics.diverged_at[r] for r in mine]
    failed = [None if d is not None else stopped_learning_at(
        epochs, per_epoch("train/error", r), num_classes) for r, d in zip(mine, diverged,
                                                                          strict=True)]
    summaries.append({
        **{k: c[k] for k in ("algorithm", "num_workers", "learning_rate", "momentum")},
        "algorithm_options": options, "seeds": seeds,
        "final_test_error": [x["test/error"] for x in last],
        "final_train_error": [x["train/error"] for x in last],
        # Per-worker data (docs/spec.md §8.4): each worker's θ error on its own examples.
        "final_train_error_by_worker": [x.get("train/error_by_worker") for x in last],
        "applied_by_worker": [_applied_by_worker(sim.spec, result.schedules[r],
                                                 int(history[-1]["step"])) for r in mine],
        "diverged": [d is not None for d in diverged], "diverged_at_step": diverged,
        "metrics_at_divergence": [metrics.at_divergence[r] for r in mine],
        "failed_from_epoch": failed,
        "failed": [e is not None for e in failed],  # never a diverged seed
        "mean_lag": float(np.mean(per_epoch("lag/mean", mine[0]))),
        # Per seed, averaged over logged chunks (epochs).
        "mean_gap_rms": [float(np.mean(per_epoch("gap/rms", r))) for r in mine],
        "mean_normalized_gap": [float(np.mean(per_epoch("gap/normalized", r))) for r in mine],
        "simulated_time": [float(x["time/simulated"]) for x in last],
        "cancelled_jobs": [int(sum(h["replicas"][r]["jobs/cancelled"] for h in history))
                           for r in mine],
        # docs/spec.md §8.5, per seed, over the steps run.
        "cost": [dj.cost.run_cost(sim.spec, result.schedules[r], r, int(history[-1]["step"]))
                 for r in mine],
        "wall_seconds": seconds, "command": runwriter.command_line(),
        "environment": runwriter.run_environment(),
        "replicas_in_program": sim.spec.num_replicas,  # with the mesh's repeats
        # What "auto" resolved to (config.json keeps the field as given).
        "execution": sim.spec.execution,
        "replica_execution": None if sim.spec.single else sim.spec.replica_execution,
        "steps": int(history[-1]["step"]),
        # Every declared per-step metric (dana_jax.METRICS) that is one number per chunk:
        # per seed, its mean over the logged chunks.
        "metric_means": {name: [float(np.mean(per_epoch(name, r))) for r in mine]
                         for name in dj.metric_names()
                         if np.ndim(history[-1]["replicas"][mine[0]].get(name, 0.0)) == 0},
    })
  return summaries


def _applied_by_worker(spec, schedule, steps: int) -> list[int] | None:
  """How many of the first ``steps`` master steps applied each worker's gradient (None for
  rounds): with per-worker data, whose data the run learned from (docs/spec.md §8.4)."""
  if spec.synchronous:
    return None
  first, last = schedule.events_of_steps(0, steps)
  kinds, workers = schedule.event_kind[first:last], schedule.event_worker[first:last]
  return np.bincount(workers[kinds == 0], minlength=spec.num_workers).tolist()
