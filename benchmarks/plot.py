"""Figures of docs/benchmarks.md from benchmarks/results/run.jsonl.

    python -m benchmarks.plot [--results benchmarks/results/run.jsonl] [--out docs/figures]

``scaling_workers.png``: the engine's cost per master step vs N, one line per
(model, algorithm, execution, device); ``scaling_model_size.png``: the cost per
master step at N = 16 vs the number of parameters. Later rows of the same
configuration replace earlier ones.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from experiments.figure_layout import pyplot, save

RESULTS = pathlib.Path(__file__).parent / "results" / "run.jsonl"


def load(path=RESULTS) -> list[dict]:
  rows = [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]
  latest = {}
  for row in rows:  # the newest measurement of each configuration
    key = (row["model"], row["num_workers"], row["algorithm"], row["batch_size"],
           row["what"], row.get("execution"), row["device"], row.get("conv", "auto"),
           row.get("block_size"), row.get("devices", 1), row.get("mesh_workers", 1),
           row.get("replicas", 1), row.get("timing", "homogeneous"))
    latest[key] = row
  # The figures compare one-device runs of one replica with the default timing; sharded
  # runs and the replica table are tabulated in docs/benchmarks.md.
  return [r for r in latest.values() if r.get("devices", 1) == 1 and r.get("replicas", 1) == 1
          and r.get("timing", "homogeneous") == "homogeneous"]


def plot_workers(rows, out):
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  lines = {}
  for r in rows:
    if r["what"] == "engine" and r.get("conv", "auto") == "auto":
      key = (r["model"], r["algorithm"], r["execution"], r["batch_size"], r["device"])
      lines.setdefault(key, []).append((r["num_workers"], 1e3 * r["seconds_per_step"]))
  for (model, algorithm, execution, batch, device), points in sorted(lines.items()):
    if len(points) < 3:
      continue
    points.sort()
    ax.plot(*zip(*points, strict=True), "o-",
            label=f"{model} {algorithm} {execution} B={batch} ({device})")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("workers N")
  ax.set_ylabel("ms per master step")
  ax.grid(alpha=0.3)
  if ax.lines:
    ax.legend(fontsize=7)
  else:
    ax.text(0.5, 0.5, "no configuration measured at 3 or more N", ha="center",
            transform=ax.transAxes)
  save(fig, out)


def plot_model_size(rows, out, num_workers=16, batch_size=32):
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for r in rows:
    if (r["what"] == "engine" and r["num_workers"] == num_workers and r["algorithm"] == "nag"
        and r["execution"] == "steps" and r["batch_size"] == batch_size
        and r.get("conv", "auto") == "auto"):
      ax.scatter(r["params"], 1e3 * r["seconds_per_step"])
      ax.annotate(f"{r['model']} ({r['device']})", (r["params"], 1e3 * r["seconds_per_step"]),
                  fontsize=7)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("parameters")
  ax.set_ylabel(f"ms per master step (N = {num_workers}, NAG, steps, B = {batch_size})")
  ax.grid(alpha=0.3)
  save(fig, out)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results", default=str(RESULTS))
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parents[1] / "docs"
                                           / "figures"))
  args = parser.parse_args(argv)
  rows = load(args.results)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  plot_workers(rows, out / "scaling_workers")
  plot_model_size(rows, out / "scaling_model_size")
  print(f"wrote {out}/scaling_workers.png and scaling_model_size.png")


if __name__ == "__main__":
  main()
