"""The tables of a sweep's ``results.md``, as Markdown strings, from its run files.

Error per algorithm and N (mean ± std over seeds, diverged and failed seeds
marked), the η × γ grid, the seeds that diverged or failed, and the simulated
time to a target error with the speedup over one worker (docs/spec.md §7).
"""

from __future__ import annotations

import pathlib

import numpy as np

from experiments.algorithm_display import ordered
from experiments.runfiles import evaluations, load_config


def _markdown_rows(algorithms, workers, text) -> list[str]:
  """Markdown rows: one per algorithm, one column per N, cells ``text(algorithm, N)``."""
  lines = ["| algorithm | " + " | ".join(f"N = {n}" for n in workers) + " |",
           "|---|" + "---|" * len(workers)]
  return lines + [f"| {a} | " + " | ".join(text(a, n) for n in workers) + " |"
                  for a in algorithms]


def failed_mark(summary: dict) -> str:
  """" (failed k/S from epoch e)" for a run with seeds that stopped learning (finite, train
  error at chance to the end: ``train.stopped_learning_at``), counted apart from the
  diverged; "" otherwise."""
  failed = summary.get("failed") or []
  if not any(failed):
    return ""
  first = min(e for e in summary["failed_from_epoch"] if e is not None)
  return f" (failed {sum(failed)}/{len(failed)} from epoch {first:.3g})"


def outcome_table(summaries: list[dict]) -> str:
  """Markdown: per algorithm and N, seeds that diverged (non-finite, with the step) and
  seeds that failed (finite, train error at chance from an epoch on), counted apart."""
  workers = sorted({s["num_workers"] for s in summaries})
  algorithms = ordered(s["algorithm"] for s in summaries)
  cell = {(s["algorithm"], s["num_workers"]): s for s in summaries}

  def text(a, n):
    s = cell.get((a, n))
    if s is None:
      return "—"
    diverged, failed = s.get("diverged") or [], s.get("failed") or []
    parts = []
    if any(diverged):
      steps = [t for t in s.get("diverged_at_step", []) if t is not None]
      parts.append(f"{sum(diverged)} diverged (step {min(steps)})" if steps
                   else f"{sum(diverged)} diverged")
    if any(failed):
      parts.append(failed_mark(s).strip(" ()"))
    return ", ".join(parts) or f"0 of {len(s.get('seeds', diverged))}"

  return "\n".join(_markdown_rows(algorithms, workers, text))


def error_table(summaries: list[dict], key: str = "final_test_error", *, scale: float = 100.0,
                formats: tuple[str, str] = (".2f", ".2f"), baseline: bool = True,
                marks: bool = True) -> str:
  """Markdown table: mean ± std of ``key`` (times ``scale``) per algorithm and N.

  ``formats`` are the format specs of the mean and the std; ``baseline`` adds
  the single-worker runs below the table; ``marks`` writes "(diverged)" and
  "(failed …)" after a cell with such a seed (an error's table; not a time's).
  """
  workers = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  algorithms = ordered(s["algorithm"] for s in summaries if s["num_workers"] > 1)
  cell = {(s["algorithm"], s["num_workers"]): s for s in summaries}
  mean_format, std_format = formats

  def text(a, n):
    s = cell.get((a, n))
    if s is None:
      return "—"
    e = scale * np.asarray(s[key])
    mark = (" (diverged)" if any(s.get("diverged", [])) else "") + failed_mark(s)
    return f"{e.mean():{mean_format}} ± {e.std():{std_format}}{mark if marks else ''}"

  lines = _markdown_rows(algorithms, workers, text)
  if baseline:
    for s in summaries:
      if s["num_workers"] == 1:
        e = scale * np.asarray(s[key])
        lines.append(f"\nSingle-worker {s['algorithm']}: {e.mean():{mean_format}} ± "
                     f"{e.std():{std_format}}")
  return "\n".join(lines)


def grid_accuracy(summaries: list[dict], key: str = "final_test_error"):
  """(learning rates, momenta from high to low, accuracy % [momenta, learning rates])."""
  lrs = sorted({s["learning_rate"] for s in summaries})
  moms = sorted({s["momentum"] for s in summaries}, reverse=True)
  acc = np.full((len(moms), len(lrs)), np.nan)
  for s in summaries:
    acc[moms.index(s["momentum"]), lrs.index(s["learning_rate"])] = 100 * (
        1 - np.mean(s[key]))
  return lrs, moms, acc


def grid_table(summaries: list[dict], key: str = "final_test_error") -> str:
  """Markdown table of test accuracy (%) over momentum (rows) × learning rate (columns)."""
  lrs, moms, acc = grid_accuracy(summaries, key)
  lines = ["| γ \\ η | " + " | ".join(f"{v:g}" for v in lrs) + " |",
           "|---|" + "---|" * len(lrs)]
  for i, m in enumerate(moms):
    lines.append(f"| {m:g} | " + " | ".join("—" if np.isnan(a) else f"{a:.2f}"
                                            for a in acc[i]) + " |")
  return "\n".join(lines)


def time_to_target(results_dir, summaries, target_points: float = 1.0,
                   target_error: float | None = None, time_key: str = "time/simulated"):
  """Per (algorithm, N): the simulated time at which test error first reaches the target.

  spec §7: the target is the single-worker baseline's mean final test error
  plus ``target_points`` percentage points, or ``target_error`` (a fraction,
  e.g. 0.15) where given. A seed's time is the simulated time
  (:func:`experiments.runfiles.evaluations`) of its first evaluation at or
  below the target; evaluations come at chunk ends, so this is resolved to a
  chunk, an epoch by default. Returns ``(target, {(algorithm, N): [time or
  None per seed]})``; None: not reached (a seed that diverged before reaching
  it included). The target is None where there is neither a baseline nor a
  ``target_error``. ``time_key="time/worker"``: the worker-time to the target instead
  (docs/spec.md §8.5; runs logged before it was recorded have none: left out).
  """
  if target_error is not None:
    target = float(target_error)
  else:
    base = [s for s in summaries if s["num_workers"] == 1]
    if not base:
      return None, {}
    target = float(np.mean(base[0]["final_test_error"])) + target_points / 100
  out = {}
  for run_dir in sorted(p.parent for p in pathlib.Path(results_dir).glob("*/metrics.jsonl")):
    config = load_config(run_dir)
    seeds, points = evaluations(run_dir, time_key=time_key)
    if not seeds and time_key != "time/simulated":
      continue
    first: dict = {}
    for seed, _, time, err in points:
      if err <= target:
        first[seed] = min(first.get(seed, np.inf), time)
    out[(config["algorithm"], config["num_workers"])] = [first.get(s) for s in seeds]
  return target, out


def cost_table(summaries: list[dict]) -> str:
  """Markdown: per algorithm and N, the mean over seeds of the run's goodput and of the
  shares of its worker-time spent communicating, idle (queued, down, waiting) and lost
  (docs/spec.md §8.5; summaries without a ``cost`` are left out)."""
  with_cost = [s for s in summaries if s.get("cost") and all(s["cost"])]
  workers = sorted({s["num_workers"] for s in with_cost if s["num_workers"] > 1})
  algorithms = ordered(s["algorithm"] for s in with_cost if s["num_workers"] > 1)
  cell = {(s["algorithm"], s["num_workers"]): s for s in with_cost}

  def share(costs, field):
    return 100 * np.mean([c[field] / c["worker_time"] for c in costs])

  def text(a, n):
    s = cell.get((a, n))
    if s is None:
      return "—"
    costs = s["cost"]
    lost = np.mean([c["gradients_lost"] + c["gradients_discarded"] for c in costs])
    return (f"{100 * np.mean([c['goodput'] for c in costs]):.0f}% · comm "
            f"{share(costs, 'communicating'):.0f}% · idle {share(costs, 'idle'):.0f}% · "
            f"lost {share(costs, 'lost'):.0f}% ({lost:.0f} grads)")

  lines = ["Goodput (compute time of applied gradients / N × elapsed time) · shares of the "
           "worker-time N × elapsed spent communicating, idle (master queue, down, waiting) "
           "and on lost work (cancelled, failed and discarded jobs; their gradients in "
           "brackets), mean over seeds.\n"]
  return "\n".join(lines + _markdown_rows(algorithms, workers, text))


def worker_error_table(summaries: list[dict]) -> str:
  """Markdown: with per-worker data (docs/spec.md §8.4), per algorithm and N the final train
  error of θ on each worker's own examples (mean over workers, worst and best), and on the
  data of the quarter of workers whose gradients the master applied most and least often
  (mean over seeds): a method biased toward fast workers learns their data better."""
  rows = [s for s in summaries if s["num_workers"] > 1
          and all(e is not None for e in s.get("final_train_error_by_worker") or [None])]
  workers = sorted({s["num_workers"] for s in rows})
  algorithms = ordered(s["algorithm"] for s in rows)
  cell = {(s["algorithm"], s["num_workers"]): s for s in rows}

  def quarters(errors, applied):
    if applied is None:
      return np.nan, np.nan
    order = np.argsort(applied, kind="stable")
    q = max(1, len(order) // 4)
    return np.mean(errors[order[-q:]]), np.mean(errors[order[:q]])

  def text(a, n):
    s = cell.get((a, n))
    if s is None:
      return "—"
    errors = [100 * np.asarray(e) for e in s["final_train_error_by_worker"]]
    applied = s.get("applied_by_worker") or [None] * len(errors)
    most, least = zip(*(quarters(e, a) for e, a in zip(errors, applied, strict=True)),
                      strict=True)
    mean, worst = np.mean([e.mean() for e in errors]), np.mean([e.max() for e in errors])
    return (f"{mean:.1f} (worst {worst:.1f}"
            f", best {np.mean([e.min() for e in errors]):.1f}) · most-applied quarter "
            f"{np.nanmean(most):.1f} / least {np.nanmean(least):.1f}")

  lines = ["Final train error (%) of θ on each worker's own examples: mean over workers "
           "(worst, best), and on the data of the quarter of workers whose gradients were "
           "applied most / least often; mean over seeds.\n"]
  return "\n".join(lines + _markdown_rows(algorithms, workers, text))


def time_to_target_table(results_dir, summaries, target_points: float = 1.0,
                         target_error: float | None = None,
                         time_key: str = "time/simulated") -> str:
  """Markdown: mean simulated time (``time_key="time/worker"``: worker-time, §8.5) to the
  target (spec §7; arguments as :func:`time_to_target`) and the speedup over one worker
  reaching it."""
  target, times = time_to_target(results_dir, summaries, target_points, target_error,
                                 time_key)
  if target is None:
    return ("(no single-worker baseline, so no default target: give one with "
            "`python -m experiments.plot DIR --target-error PERCENT`)")
  base_alg = next((s["algorithm"] for s in summaries if s["num_workers"] == 1), None)
  base = times.get((base_alg, 1), [])
  base_time = np.mean(base) if base and all(t is not None for t in base) else None
  workers = sorted({n for (_, n) in times if n > 1})
  algorithms = ordered(a for (a, n) in times if n > 1)
  if target_error is not None:
    what = "given"
  else:
    what = (f"single-worker {base_alg}'s final error + {target_points:g} "
            f"point{'' if target_points == 1 else 's'}")
  if base_alg is None:
    speedup = "no single-worker baseline, so no speedup"
  elif base_time is None:
    speedup = f"no speedup: the single-worker {base_alg} did not reach it on every seed"
  else:
    speedup = (f"in brackets the speedup over one worker of average speed ({base_time:.0f}: "
               "the baseline's steps to the target × 128)")
  units = "simulated time units (one worker's mean batch time is 128)"
  if time_key == "time/worker":
    units = ("worker-time units (N × simulated time, less the time workers were down; "
             "one worker's mean batch time is 128)")
    speedup = speedup.replace("the speedup over one worker", "the single worker's "
                              "time over this worker-time (its efficiency), one worker")
  lines = [f"Target: test error ≤ {100 * target:.2f}% ({what}); {units}, mean over seeds; "
           f"{speedup}. "
           "\"not reached\": some seed never reached it (a diverged seed included).\n"]

  def text(a, n):
    t = times.get((a, n))
    if t is None:
      return "—"
    if any(x is None for x in t):
      return f"not reached ({sum(x is not None for x in t)}/{len(t)} seeds)"
    ratio = f" ({base_time / np.mean(t):.1f}×)" if base_time else ""
    return f"{np.mean(t):.0f}{ratio}"

  return "\n".join(lines + _markdown_rows(algorithms, workers, text))
