"""Reading a sweep's run files: ``*/config.json``, ``*/metrics.jsonl``, ``*/summary.json``.

What every table and figure of :mod:`experiments.plot` stands on, and nothing
else: no jax, no simulation. A sweep directory (an experiment's ``--workdir``)
holds one directory per run; a run is one (algorithm, N) simulation over all
seeds (or one cell of an η × γ grid).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

MEAN_BATCH_TIME = 128.0  # dana_jax.timing.MEAN_BATCH_TIME (not imported: no jax here)

def read_json(path: pathlib.Path):
  """(value, None), or (None, why) for a file that is missing, empty or not JSON."""
  try:
    text = path.read_text()
  except FileNotFoundError:
    return None, "missing"
  except (OSError, UnicodeDecodeError) as e:
    return None, f"unreadable ({type(e).__name__})"
  if not text.strip():
    return None, "empty"
  try:
    return json.loads(text), None
  except json.JSONDecodeError as e:
    return None, f"not JSON ({e.msg} at line {e.lineno})"


def load_summaries(results_dir) -> list[dict]:
  """Every run's ``summary.json`` (written when the run finished), by directory name."""
  return [json.loads(p.read_text())
          for p in sorted(pathlib.Path(results_dir).glob("*/summary.json"))]


def load_metrics(run_dir) -> list[dict]:
  """The rows of one run's ``metrics.jsonl``; a line that is not JSON (the torn last line
  of an interrupted write) is left out, with a warning naming the file and the line."""
  path = pathlib.Path(run_dir) / "metrics.jsonl"
  rows, lines = [], path.read_text().splitlines()
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      print(f"warning: {path}: line {i + 1} of {len(lines)} is not JSON (a torn write?); "
            "left out. The same sweep command re-runs the point.", file=sys.stderr)
  return rows


def load_config(run_dir) -> dict:
  """One run's ``config.json``."""
  return json.loads((pathlib.Path(run_dir) / "config.json").read_text())


def run_dirs(results_dir) -> dict:
  """{(label, N): run directory} of the runs with a metrics file. The label is the
  algorithm, or, where several runs share an (algorithm, N) — the cells of a grid
  sweep — the algorithm with the cell's η and γ."""
  runs = [(load_config(p.parent), p.parent)
          for p in sorted(pathlib.Path(results_dir).glob("*/metrics.jsonl"))]
  count: dict = {}
  for config, _ in runs:
    key = (config["algorithm"], config["num_workers"])
    count[key] = count.get(key, 0) + 1
  out = {}
  for config, run_dir in runs:
    a, n = config["algorithm"], config["num_workers"]
    label = a if count[(a, n)] == 1 else (
        f"{a} η={config.get('learning_rate', '?'):g} γ={config.get('momentum', '?'):g}")
    out[(label, n)] = run_dir
  return out


def evaluations(run_dir, key: str = "test/error", time_key: str = "time/simulated"):
  """(seeds evaluated, [(seed, step, simulated time, value)] of the finite evaluations of
  ``key`` (the test error by default); ``time_key="time/worker"``: the worker-time held
  instead of the simulated time (docs/spec.md §8.5; a single-worker run's is its step ×
  128 either way).

  The time axis of docs/spec.md §7: a run's logged ``time/simulated``, except a
  single-worker run's, which is its step × 128 (one worker of average speed:
  the baseline every speedup is over). Non-finite (diverged) evaluations are
  not in the list, but their seeds are among those evaluated.
  """
  single = load_config(run_dir)["num_workers"] == 1
  seeds, points = set(), []
  for row in load_metrics(run_dir):
    if key not in row or time_key not in row:
      continue
    seeds.add(row["seed"])
    err = row[key]
    if err is None or not np.isfinite(err):
      continue
    time = row["step"] * MEAN_BATCH_TIME if single else row[time_key]
    points.append((row["seed"], row["step"], time, err))
  return sorted(seeds), points


def error_against_time(run_dir, key: str = "test/error"
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
  """(simulated time, mean test error, its std over seeds) at each evaluation of a run
  (the time of :func:`evaluations`, averaged over seeds). An evaluation only some seeds
  reached finitely is averaged over those. None: no evaluation with a simulated time."""
  by_step: dict = {}
  for _, step, time, err in evaluations(run_dir, key)[1]:
    by_step.setdefault(step, []).append((time, err))
  if not by_step:
    return None
  points = [np.asarray(by_step[k]) for k in sorted(by_step)]
  return (np.array([p[:, 0].mean() for p in points]), np.array([p[:, 1].mean() for p in points]),
          np.array([p[:, 1].std() for p in points]))


def final_values(run_dir, key: str) -> list:
  """Per seed (in seed order), the last finite value of ``key`` in a run's metrics; None
  for a seed without one (e.g. diverged before its first evaluation)."""
  last: dict = {}
  for row in load_metrics(run_dir):
    value = row.get(key)
    if value is not None and np.isfinite(value):
      last[row["seed"]] = value
    else:
      last.setdefault(row["seed"], None)
  return [last[s] for s in sorted(last)]
