"""Shared driver: one simulation per (algorithm, N), seeds on the replica axis.

Each run writes ``config.json``, ``metrics.jsonl`` (one object per chunk and
replica, slash-namespaced keys) and ``summary.json`` into its own directory; a
finished run (its summary exists) is skipped when the sweep is re-run.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time

import numpy as np

import dana_jax as dj
from dana_jax import data, models
from dana_jax import schedule as S


def load_data(config):
  if config.dataset == "digits":
    return data.digits()
  raise ValueError(f"config.dataset={config.dataset!r} is not allowed: choose 'digits'.")


def make_model(config, input_shape):
  if config.model == "mlp":
    return models.flax_model(models.MLP(tuple(config.hidden)), input_shape)
  if config.model == "cnn":
    return models.flax_model(models.SmallCNN(), input_shape)
  raise ValueError(f"config.model={config.model!r} is not allowed: choose 'mlp' or 'cnn'.")


def run_one(config, algorithm: str, num_workers: int, workdir: pathlib.Path, dataset) -> dict:
  """Simulates one (algorithm, N) point for every seed; returns its summary."""
  run_dir = workdir / f"{algorithm}_N{num_workers}"
  summary_path = run_dir / "summary.json"
  if summary_path.exists():
    return json.loads(summary_path.read_text())
  tx, ty, vx, vy = dataset
  model = make_model(config, tx.shape[1:])
  seeds = list(config.seeds)
  spe = tx.shape[0] // config.batch_size
  if dj.get_algorithm(algorithm).synchronous:  # one master step per N gradients
    spe = max(1, spe // num_workers)
  schedule = functools.partial(dj.paper_schedule, steps_per_epoch=spe, num_workers=num_workers,
                               warmup_epochs=config.warmup_epochs,
                               decay_epochs=tuple(config.decay_epochs))
  sim = dj.Simulator(model, algorithm, tx, ty, num_workers=num_workers,
                     batch_size=config.batch_size, seeds=seeds,
                     hyperparams=dj.Hyperparams(config.learning_rate, config.momentum,
                                                config.weight_decay),
                     learning_rate_schedule=schedule, timing=S.make_timing(config.timing),
                     execution=config.execution)
  run_dir.mkdir(parents=True, exist_ok=True)
  run_config = {**config.to_dict(), "algorithm": algorithm, "num_workers": num_workers}
  (run_dir / "config.json").write_text(json.dumps(run_config, indent=2, default=list))
  began = time.perf_counter()
  with open(run_dir / "metrics.jsonl", "w") as log:
    def write(record):
      for seed, rep in zip(seeds, record["replicas"], strict=True):
        row = {"step": record["step"], "epoch": record["epoch"], "seed": seed,
               "perf/examples_per_second": record["examples_per_second"], **rep}
        log.write(json.dumps(row) + "\n")
      log.flush()
    num_steps = config.epochs * sim.steps_per_epoch
    result = dj.simulate(sim, num_steps, eval_data=(vx, vy), train_eval_data=(tx, ty),
                         callback=write, progress=True)
  last = result.history[-1]["replicas"]
  summary = {
      "algorithm": algorithm, "num_workers": num_workers, "seeds": seeds,
      "final_test_error": [r["test/error"] for r in last],
      "final_train_error": [r["train/error"] for r in last],
      "diverged": [bool(r["nonfinite"]) for r in last],
      "mean_lag": float(np.mean([h["replicas"][0]["lag/mean"] for h in result.history])),
      # Per seed, averaged over logged chunks (epochs).
      "mean_gap_rms": [float(np.mean([h["replicas"][r]["gap/rms"] for h in result.history]))
                       for r in range(len(seeds))],
      "mean_normalized_gap": [
          float(np.mean([h["replicas"][r].get("gap/normalized", np.nan)
                         for h in result.history])) for r in range(len(seeds))],
      "wall_seconds": time.perf_counter() - began,
      "steps": int(result.history[-1]["step"]),
  }
  summary_path.write_text(json.dumps(summary, indent=2))
  return summary


def run_sweep(config, workdir) -> list[dict]:
  """The baseline at N = 1, then every algorithm at every N."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  dataset = load_data(config)
  points = [(config.baseline, 1)] + [(a, n) for a in config.algorithms
                                     for n in config.num_workers]
  summaries = []
  for i, (algorithm, n) in enumerate(points):
    print(f"[{i + 1}/{len(points)}] {algorithm} N={n}", flush=True)
    summaries.append(run_one(config, algorithm, n, workdir, dataset))
  return summaries
