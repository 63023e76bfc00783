"""Goodput under failures from the schedule alone: no training (docs/spec.md §8.2, §8.5).

    python -m experiments.goodput [--num-workers 16] [--gradients 32000] [--out DIR]

In the spirit of Decoupled DiLoCo's comparison of elastic data-parallel training and
asynchronous learners under failures, but **only the machine-time side of it**: no model
is trained, so it says nothing about accuracy. For each MTBF (exponential up periods, MTTR
fixed) it builds the schedule of

* ``async``: any asynchronous method (NAG-ASGD, GA, DANA-GA: the same events), a failed
  worker's in-flight job lost, the others going on;
* ``ssgd elastic``: synchronous rounds of the workers that are up (a round shrinks);
* ``ssgd wait``: synchronous rounds that wait for every worker to be back;
* ``msync 0.9N``: rounds that end at the first round(0.9 N) gradients (14 of 16);

each for the same number of master steps: ⌈gradients / gradients per step⌉ (one gradient
per async step, up to N per round: a shrunk round applies fewer, which the worker-time
per applied gradient accounts for), and writes its cost (dana_jax.cost):
elapsed simulated time, goodput (compute time of applied gradients / N × elapsed),
worker-time lost and idle, and the worker-time per applied gradient, as
``goodput.md`` and ``goodput.csv`` under ``--out`` (results/goodput).
"""

from __future__ import annotations

import argparse
import csv
import math
import pathlib
import sys
import time

import dana_jax as dj
from dana_jax.cost import run_cost
from dana_jax.engine import plan
from dana_jax.environment import make_environment

MEAN_BATCH_TIME = 128.0
MTBFS = (math.inf, 1.28e6, 1.28e5, 3.2e4, 1.28e4)  # never … 100 mean batch times
MTTR = 1280.0  # 10 mean batch times
# A Fashion-MNIST MLP's parameter count (784·256 + 256 + 256·256 + 256 + 256·10 + 10):
# only the bytes of a message depend on it, and the links here are free.
NUM_PARAMS = 269_322
METHODS = {  # name: (algorithm, options, availability extra)
    "async": ("nag", None, {}),
    "ssgd elastic": ("ssgd", None, {}),
    "ssgd wait": ("ssgd", None, {"wait_for_all": True}),
    "msync 0.9N": ("msync", {"num_gradients": 0.9}, {}),  # round(0.9 N)
}


def one(method: str, mtbf: float, num_workers: int, gradients: int, seed: int) -> dict:
  algorithm, options, extra = METHODS[method]
  if options is not None:  # a fraction of N
    options = {k: max(1, round(v * num_workers)) for k, v in options.items()}
  env = make_environment(compute=dict(name="homogeneous"),
                         availability=dict(name="up_down", mtbf=mtbf, mttr=MTTR, **extra))
  spec = dj.RunSpec.create(algorithm, num_workers=num_workers, batch_size=128,
                           num_examples=60_000, algorithm_options=options, seeds=seed,
                           environment=env, num_params=NUM_PARAMS)
  steps = math.ceil(gradients / spec.batches_per_step)
  began = time.perf_counter()
  schedule = plan.schedules(spec, steps)[0]
  cost = run_cost(spec, schedule)
  applied = cost["gradients_applied"]
  return {"method": method, "mtbf": mtbf, "mtbf_batches": mtbf / MEAN_BATCH_TIME,
          "steps": steps, "elapsed": cost["elapsed"], "goodput": cost["goodput"],
          "lost_share": cost["lost"] / cost["worker_time"],
          "idle_share": cost["idle"] / cost["worker_time"],
          "down_share": cost["idle_down"] / cost["worker_time"],
          "gradients_applied": applied, "gradients_lost": cost["gradients_lost"],
          "worker_time_per_gradient": cost["worker_time"] / applied,
          "schedule_seconds": time.perf_counter() - began}


def table(rows) -> str:
  lines = ["| MTBF (batch times) | method | elapsed | goodput | lost | idle (down) | "
           "gradients lost | worker-time / applied gradient |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    mtbf = "never" if math.isinf(r["mtbf"]) else f"{r['mtbf_batches']:.0f}"
    lines.append(f"| {mtbf} | {r['method']} | {r['elapsed']:.4g} | {100 * r['goodput']:.1f}% "
                 f"| {100 * r['lost_share']:.1f}% | {100 * r['idle_share']:.1f}% "
                 f"({100 * r['down_share']:.1f}%) | {r['gradients_lost']} | "
                 f"{r['worker_time_per_gradient']:.1f} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num-workers", type=int, default=16)
  parser.add_argument("--gradients", type=int, default=32_000,
                      help="gradients a run would apply with every worker up (default 32000: "
                           "2000 rounds of 16); it sets the master steps")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="results/goodput")
  args = parser.parse_args(argv)
  if args.num_workers < 1 or args.gradients < 1:
    print(f"error: --num-workers={args.num_workers} --gradients={args.gradients}: both must "
          "be at least 1", file=sys.stderr)
    return 2
  began = time.perf_counter()
  rows = [one(m, mtbf, args.num_workers, args.gradients, args.seed)
          for mtbf in MTBFS for m in METHODS]
  seconds = time.perf_counter() - began
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  with open(out / "goodput.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  command = "python -m experiments.goodput " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
  (out / "goodput.md").write_text(
      "# Goodput under failures, from the schedule alone (no training)\n\n"
      f"N = {args.num_workers}, master steps for {args.gradients} gradients per run (a round "
      "that shrinks because workers are down applies fewer), homogeneous "
      f"gamma batch times (mean {MEAN_BATCH_TIME:g}), free links, exponential up periods of "
      f"the given MTBF and exponential repairs of mean {MTTR:g} ({MTTR / MEAN_BATCH_TIME:g} "
      f"batch times), seed {args.seed}. Machine time only: no model is trained, so nothing "
      "here is about accuracy (docs/spec.md §8.2, §8.5; experiments/goodput.py).\n\n"
      + table(rows) + "\n\n"
      f"Command: `{command.strip()}`; {seconds:.1f} s on the machine that wrote this.\n")
  print(table(rows))
  print(f"wrote {out / 'goodput.md'} and {out / 'goodput.csv'} ({seconds:.1f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
