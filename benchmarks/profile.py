"""Per-op time of the engine's compiled chunk, from a ``jax.profiler`` trace.

    python -m benchmarks.profile [--model mlp] [--workers 16] [--algorithm nag]
        [--batch 32] [--steps 400] [--top 25] [--trace-dir DIR]

Runs one chunk of ``--steps`` master steps to compile and warm up, times a
second, traces a third, and prints for each op that ran at least once per
master step its summed duration per master step (XLA:CPU thunks: fusions,
dots, copies). Ops on the two cores overlap, so the column does not add up to
the wall time. This is how the per-op table of docs/benchmarks.md was made.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import sys
import tempfile
import time

import jax

import dana_jax as dj
from benchmarks.run import MODELS, synthetic
from dana_jax import models


def op_times(trace_dir: str) -> tuple[collections.Counter, collections.Counter]:
  """Summed duration (µs) and count of each complete event of the newest trace in ``trace_dir``."""
  files = sorted(pathlib.Path(trace_dir).rglob("*.trace.json.gz"))
  if not files:
    raise FileNotFoundError(f"no *.trace.json.gz under {trace_dir}: did the profiler run?")
  events = json.load(gzip.open(files[-1]))
  events = events["traceEvents"] if isinstance(events, dict) else events
  total, count = collections.Counter(), collections.Counter()
  for e in events:
    if e.get("ph") == "X":
      total[e["name"]] += e.get("dur", 0)
      count[e["name"]] += 1
  return total, count


def profile(model_name: str, num_workers: int, algorithm: str, batch: int, steps: int,
            trace_dir: str) -> tuple[float, list[tuple[str, float]]]:
  """(ms per master step untraced, [(op, µs per master step)] longest first)."""
  factory, shape = MODELS[model_name]
  x, y = synthetic(shape, 1024, 10)
  sim = dj.Simulator(models.flax_model(factory(), shape), algorithm, x, y,
                     num_workers=num_workers, batch_size=batch, execution="steps",
                     hyperparams=dj.Hyperparams(0.01, 0.9, 1e-4))
  schedules = dj.engine.plan.schedules(sim.spec, 3 * steps, steps)
  state = sim.init()
  state, out = sim.run_chunk(state, schedules, 0, steps)
  jax.block_until_ready(out)
  start = time.perf_counter()
  state, out = sim.run_chunk(state, schedules, steps, 2 * steps)
  jax.block_until_ready(out)
  ms = (time.perf_counter() - start) / steps * 1e3
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    state, out = sim.run_chunk(state, schedules, 2 * steps, 3 * steps)
    jax.block_until_ready(out)
  total, count = op_times(trace_dir)
  skip = ("ThunkExecutor", "$")  # the executor's own spans and Python frames
  ops = [(name, micros / steps) for name, micros in total.most_common()
         if count[name] >= steps and not name.startswith(skip)]
  return ms, ops


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="mlp", choices=sorted(MODELS))
  parser.add_argument("--workers", type=int, default=16)
  parser.add_argument("--algorithm", default="nag", choices=sorted(dj.ALGORITHMS))
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=400, help="master steps per chunk")
  parser.add_argument("--top", type=int, default=25, help="ops to print")
  parser.add_argument("--trace-dir", default=None, help="keep the trace here (default: temp)")
  args = parser.parse_args(argv)
  if args.steps < 1 or args.top < 1:
    parser.error(f"--steps={args.steps} and --top={args.top}: both must be ≥ 1")
  with tempfile.TemporaryDirectory() as tmp:
    ms, ops = profile(args.model, args.workers, args.algorithm, args.batch, args.steps,
                      args.trace_dir or tmp)
  print(f"{args.model} N={args.workers} {args.algorithm} B={args.batch}: {ms:.3f} ms per "
        f"master step untraced; op time per master step (traced):")
  for name, micros in ops[:args.top]:
    print(f"  {micros:8.1f} µs  {name}")
  return ms, ops


if __name__ == "__main__":
  main()
