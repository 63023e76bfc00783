"""Cost per master step of every docs/spec.md §6 method against NAG-ASGD's.

    python -m benchmarks.methods [--model mlp] [--workers 16] [--steps 300]
        [--timing heterogeneous] [--only nag,ringmaster] [--out benchmarks/results/methods.jsonl]

For each method, with the options the ``modern`` presets use
(``experiments.configs.common.set_modern``) and the adaptive bases of SA and GA,
one compiled chunk of ``--steps`` master steps is timed as ``benchmarks.run``
times the engine (same model, synthetic data on the device, ``steps``
execution, one replica), and printed as ms per master step, ms per gradient
(a round of m-sync or Rennala applies G gradients, a local-SGD job runs H
inner steps) and the ratio to NAG's cost per master step. Rows are appended
to ``--out`` with device, versions and the command.
"""

from __future__ import annotations

import argparse
import sys

import jax

import dana_jax as dj
from benchmarks import run

METHODS = [  # (label, algorithm, options, gradients per master step as a function of N)
    ("nag", "nag", {}, lambda n: 1),
    ("ga", "ga", {}, lambda n: 1),
    ("dana_ga", "dana_ga", {}, lambda n: 1),
    ("delay_adaptive", "delay_adaptive", {}, lambda n: 1),
    ("ringmaster R=N", "ringmaster", {"max_delay": "N"}, lambda n: 1),
    ("ringmaster R=N/4", "ringmaster", {"max_delay": "N/4"}, lambda n: 1),
    ("ringmaster R=N/4 cancel=False", "ringmaster", {"max_delay": "N/4", "cancel": False},
     lambda n: 1),
    ("msync m=0.9N", "msync", {"num_gradients": "0.9N"}, lambda n: max(1, round(0.9 * n))),
    ("rennala S=N", "rennala", {"num_gradients": "N"}, lambda n: n),
    ("async_local_sgd H=4 DN", "async_local_sgd",
     {"local_steps": 4, "outer": "delayed_nesterov"}, lambda n: 4),
    ("async_local_sgd H=4 DyLU", "async_local_sgd",
     {"local_steps": 4, "outer": "delayed_nesterov", "dynamic_local_steps": True},
     lambda n: 4),
    # With persistent worker speeds, so that the H_i differ (without, DyLU's H_i all = H).
    ("async_local_sgd H=4 DyLU, speeds", "async_local_sgd",
     {"local_steps": 4, "outer": "delayed_nesterov", "dynamic_local_steps": True},
     lambda n: 4),
    ("sa base=adam", "sa", {"base": "adam"}, lambda n: 1),
    ("ga base=adamw", "ga", {"base": "adamw"}, lambda n: 1),
    ("ga base=muon", "ga", {"base": "muon"}, lambda n: 1),
]


def _resolve(options: dict, n: int) -> dict:
  out = {}
  for key, value in options.items():
    if isinstance(value, str) and "N" in value:
      factor = value.replace("N", "") or "1"
      out[key] = max(1, round(n / float(factor[1:])) if factor.startswith("/")
                     else round(n * float(factor)))
    else:
      out[key] = value
  return out


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="mlp", choices=sorted(run.MODELS))
  parser.add_argument("--workers", type=int, default=16)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--timing", default="heterogeneous", choices=sorted(run.TIMINGS))
  parser.add_argument("--only", default=None,
                      help="comma-separated algorithm names: measure only their rows (and nag's)")
  parser.add_argument("--out", default=str(run.RESULTS.parent / "methods.jsonl"))
  args = parser.parse_args(argv)
  env = {**run.environment(argv), "command": "python -m benchmarks.methods " + " ".join(argv)}
  factory, shape = run.MODELS[args.model]
  model = dj.flax_model(factory(), shape)
  x, y = run.synthetic(shape, 16 * args.batch, 10)
  n, rows = args.workers, []
  print(f"{args.model}, N={n}, B={args.batch}, {args.timing} timing, {args.steps} steps per "
        f"chunk, {env['device']}", flush=True)
  print(f"{'method':32s}{'ms/step':>10s}{'ms/grad':>10s}{'vs nag':>8s}", flush=True)
  only = None if args.only is None else {"nag", *args.only.split(",")}
  for label, algorithm, options, per_step in METHODS:
    if only is not None and algorithm not in only:
      continue
    speeds = label.endswith(", speeds")
    cell = argparse.Namespace(algorithm=algorithm, algorithm_options=_resolve(options, n),
                              timing_model=dj.heterogeneous(worker_speed_shape=2.0)
                              if speeds else None,
                              execution="steps", block_size=None, timing=args.timing,
                              replicas=1, batch=args.batch, steps=args.steps,
                              repeats=args.repeats, mesh_workers=1)
    row = {"what": "method", "method": label, "algorithm": algorithm,
           "options": cell.algorithm_options, "model": args.model, "num_workers": n,
           "batch_size": args.batch, "steps": args.steps,
           "timing": "heterogeneous, worker_speed_shape 2" if speeds else args.timing, **env,
           **run.measure_engine(model, x, y, cell, n)}
    row["gradients_per_step"] = per_step(n)
    row["seconds_per_gradient"] = row["seconds_per_step"] / row["gradients_per_step"]
    rows.append(row)
    row["over_nag"] = row["seconds_per_step"] / rows[0]["seconds_per_step"]
    print(f"{label:32s}{1e3 * row['seconds_per_step']:10.3f}"
          f"{1e3 * row['seconds_per_gradient']:10.3f}{row['over_nag']:8.2f}", flush=True)
    run.append(args.out, [row])
    jax.clear_caches()


if __name__ == "__main__":
  main()
