"""Measures the engine's executions: steps (scan), blocks (scan + vmap), and a host loop.

    python -m benchmarks.execution [--steps 600] [--workers 16] [--out FILE]

For each model (the digits MLP, and a small CNN with BatchNorm) it times, after
compilation, master steps per second for

* ``steps``:  one ``lax.scan`` over master steps, one gradient per step;
* ``blocks``: ``lax.scan`` over blocks of distinct workers, one ``vmap`` of K = N gradients;
* ``host loop``: the same compiled step called from Python once per master step
  (how a naive port is written).

Appends one JSON object per measurement to ``benchmarks/results/execution.jsonl``
with the device, versions and command.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import jax
import numpy as np

import dana_jax as dj
from dana_jax import data, models

MODELS = {
    "mlp": lambda: models.flax_model(models.MLP((64,)), (8, 8)),
    "cnn_bn": lambda: models.flax_model(models.SmallCNN(channels=(16, 32), hidden=64), (8, 8)),
}


def measure(model_name, execution, num_workers, steps, host_loop=False, repeats=3):
  tx, ty, _, _ = data.digits()
  sim = dj.Simulator(MODELS[model_name](), "nag", tx, ty, num_workers=num_workers,
                     batch_size=32, execution=execution,
                     hyperparams=dj.Hyperparams(0.01, 0.9, 1e-4))
  chunk = 1 if host_loop else steps
  schedules = sim.schedules(2 * steps, chunk)
  num_blocks = (sim.blocks_per_chunk(schedules, 2 * steps, chunk)
                if execution == "blocks" else None)
  state = sim.init()
  began = time.perf_counter()
  state, out = sim.run_chunk(state, schedules, 0, chunk, num_blocks)  # compile
  jax.block_until_ready(out)
  compile_s = time.perf_counter() - began
  times = []
  for _ in range(repeats):
    began = time.perf_counter()
    for start in range(steps, 2 * steps, chunk):
      state, out = sim.run_chunk(state, schedules, start, start + chunk, num_blocks)
    jax.block_until_ready(out)
    times.append(time.perf_counter() - began)
    state = sim.init()
  seconds = float(np.median(times))
  return {"model": model_name, "execution": "host loop" if host_loop else execution,
          "num_workers": num_workers, "batch_size": 32, "steps": steps,
          "steps_per_second": steps / seconds, "examples_per_second": steps * 32 / seconds,
          "first_call_seconds": compile_s}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--workers", type=int, default=16)
  parser.add_argument("--models", default="mlp,cnn_bn")
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results"
                                           / "execution.jsonl"))
  args = parser.parse_args()
  env = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
         "cpu_count": __import__("os").cpu_count(), "python": platform.python_version(),
         "jax": jax.__version__, "command": "python -m benchmarks.execution " + " ".join(
             sys.argv[1:]), "date": time.strftime("%Y-%m-%d")}
  rows = []
  for model in args.models.split(","):
    for execution, host in [("steps", False), ("blocks", False), ("steps", True)]:
      steps = max(args.steps // (10 if host else 1), 20)
      row = {**measure(model, execution, args.workers, steps, host_loop=host), **env}
      rows.append(row)
      print(f"{model:7s} {row['execution']:9s} N={args.workers}: "
            f"{row['steps_per_second']:9.1f} steps/s  {row['examples_per_second']:9.0f} ex/s  "
            f"(first call {row['first_call_seconds']:.2f}s)", flush=True)
  with open(args.out, "a") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  main()
