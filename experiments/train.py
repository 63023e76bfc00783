"""Shared driver: one simulation per sweep point, seeds on the engine's replica axis.

Each run writes ``config.json``, ``metrics.jsonl`` (one object per chunk and
seed, slash-namespaced keys) and ``summary.json`` into its own directory; a
finished run (its summary exists) is skipped when the sweep is re-run. A seed
whose loss or parameters become non-finite is recorded as diverged, with the
step, and the sweep goes on.
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

SWEEPS = ("main", "grid")


def load_data(config):
  """``(train_x, train_y, test_x, test_y, num_classes)``; images float32, standardized."""
  if config.dataset == "digits":
    return (*data.digits(), 10)
  from experiments import input_pipeline

  tx, ty, vx, vy = input_pipeline.load(config.dataset, data_dir=config.get("data_dir"),
                                       idx_dir=config.get("idx_dir"))
  tx, vx = tx.astype(np.float32) / 255.0, vx.astype(np.float32) / 255.0
  mean = tx.mean(axis=(0, 1, 2), keepdims=True)
  std = tx.std(axis=(0, 1, 2), keepdims=True)
  return (tx - mean) / std, ty, (vx - mean) / std, vy, input_pipeline.NUM_CLASSES[config.dataset]


def make_model(config, input_shape, num_classes):
  name = config.model
  if name == "mlp":
    module = models.MLP(tuple(config.hidden), num_classes)
  elif name == "cnn":
    module = models.SmallCNN(num_classes=num_classes)
  elif name == "resnet":
    module = models.CifarResNet(config.get("depth", 20), num_classes)
  elif name == "wrn":
    module = models.WideResNet(config.get("depth", 16), config.get("widen_factor", 4),
                               num_classes)
  elif name == "resnet50":
    module = models.ResNet50(num_classes)
  else:
    raise ValueError(f"config.model={name!r} is not allowed: choose one of "
                     "'mlp', 'cnn', 'resnet', 'wrn', 'resnet50'.")
  return models.flax_model(module, input_shape)


def augmentation(config):
  if config.get("augment", "none") == "none":
    return None
  if config.augment == "crop_flip":
    from experiments.augment import random_crop_and_flip
    return random_crop_and_flip
  raise ValueError(f"config.augment={config.augment!r} is not allowed: 'none' or 'crop_flip'.")


def timing_model(config):
  kwargs = {}
  if config.get("timing_shape") is not None:
    kwargs["shape"] = config.timing_shape
  return S.make_timing(config.timing, **kwargs)


def sweep_points(config) -> list[dict]:
  """The (algorithm, N, η, γ) points of a sweep, each one run directory."""
  base = {"learning_rate": config.learning_rate, "momentum": config.momentum}
  if config.sweep == "main":
    points = [{"algorithm": config.baseline, "num_workers": 1, **base}] if config.baseline else []
    points += [{"algorithm": a, "num_workers": n, **base}
               for a in config.algorithms for n in config.num_workers]
  elif config.sweep == "grid":
    points = [{"algorithm": a, "num_workers": n, "learning_rate": lr, "momentum": m}
              for a in config.algorithms for n in config.num_workers
              for lr in config.grid_learning_rates for m in config.grid_momenta]
  else:
    raise ValueError(f"config.sweep={config.sweep!r} is not allowed: choose one of {SWEEPS}.")
  for p in points:
    p["name"] = f"{p['algorithm']}_N{p['num_workers']}"
    if config.sweep == "grid":
      p["name"] += f"_lr{p['learning_rate']:g}_m{p['momentum']:g}"
  return points


def run_point(config, point: dict, workdir: pathlib.Path, dataset) -> dict:
  """Simulates one sweep point for every seed; returns its summary."""
  run_dir = workdir / point["name"]
  summary_path = run_dir / "summary.json"
  if summary_path.exists():
    return json.loads(summary_path.read_text())
  tx, ty, vx, vy, num_classes = dataset
  algorithm, num_workers = point["algorithm"], point["num_workers"]
  model = make_model(config, tx.shape[1:], num_classes)
  seeds = list(config.seeds)
  steps_per_epoch = tx.shape[0] // config.batch_size
  if dj.get_algorithm(algorithm).synchronous:  # one master step per N gradients
    steps_per_epoch = max(1, steps_per_epoch // num_workers)
  schedule = functools.partial(dj.paper_schedule, steps_per_epoch=steps_per_epoch,
                               num_workers=num_workers, warmup_epochs=config.warmup_epochs,
                               decay_epochs=tuple(config.decay_epochs))
  sim = dj.Simulator(model, algorithm, tx, ty, num_workers=num_workers,
                     batch_size=config.batch_size, seeds=seeds,
                     hyperparams=dj.Hyperparams(point["learning_rate"], point["momentum"],
                                                config.weight_decay),
                     learning_rate_schedule=schedule, timing=timing_model(config),
                     execution=config.execution, augment=augmentation(config),
                     algorithm_options=dict(config.get("algorithm_options", {})))
  train_eval = config.get("train_eval_examples", tx.shape[0])
  run_dir.mkdir(parents=True, exist_ok=True)
  run_config = {**config.to_dict(), **point}
  (run_dir / "config.json").write_text(json.dumps(run_config, indent=2, default=list))
  began = time.perf_counter()
  diverged_at = [None] * len(seeds)
  with open(run_dir / "metrics.jsonl", "w") as log:
    def write(record):
      for r, (seed, rep) in enumerate(zip(seeds, record["replicas"], strict=True)):
        if rep["nonfinite"] and diverged_at[r] is None:
          diverged_at[r] = record["step"]
        row = {"step": record["step"], "epoch": record["epoch"], "seed": seed,
               "perf/examples_per_second": record["examples_per_second"], **rep}
        log.write(json.dumps(row) + "\n")
      log.flush()

    result = dj.simulate(sim, config.epochs * sim.steps_per_epoch, eval_data=(vx, vy),
                         train_eval_data=(tx[:train_eval], ty[:train_eval]), callback=write)
  last = result.history[-1]["replicas"]
  summary = {
      **{k: point[k] for k in ("algorithm", "num_workers", "learning_rate", "momentum")},
      "seeds": seeds,
      "final_test_error": [r["test/error"] for r in last],
      "final_train_error": [r["train/error"] for r in last],
      "diverged": [d is not None for d in diverged_at],
      "diverged_at_step": diverged_at,
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
  """Every point of ``config``'s sweep, in order; finished points are skipped."""
  workdir = pathlib.Path(workdir)
  points = sweep_points(config)  # validates the sweep before anything is written
  dataset = load_data(config)
  workdir.mkdir(parents=True, exist_ok=True)
  summaries = []
  for i, point in enumerate(points):
    print(f"[{i + 1}/{len(points)}] {point['name']}", flush=True)
    summaries.append(run_point(config, point, workdir, dataset))
  return summaries
