"""Tables and figures drawn from result files only.

    python -m experiments.plot RESULTS_DIR    (--help: what it writes)
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

MEAN_BATCH_TIME = 128.0  # dana_jax.timing.MEAN_BATCH_TIME (not imported: no jax here)


def load_summaries(results_dir) -> list[dict]:
  return [json.loads(p.read_text())
          for p in sorted(pathlib.Path(results_dir).glob("*/summary.json"))]


def _table(algorithms, workers, text) -> list[str]:
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

  return "\n".join(_table(algorithms, workers, text))


def error_table(summaries: list[dict], key: str = "final_test_error", *, scale: float = 100.0,
                formats: tuple[str, str] = (".2f", ".2f"), baseline: bool = True) -> str:
  """Markdown table: mean ± std of ``key`` (times ``scale``) per algorithm and N.

  ``formats`` are the format specs of the mean and the std; ``baseline`` adds
  the single-worker runs below the table.
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
    mark = " (diverged)" if any(s.get("diverged", [])) else ""
    return f"{e.mean():{mean_format}} ± {e.std():{std_format}}{mark}{failed_mark(s)}"

  lines = _table(algorithms, workers, text)
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


def plot_error_vs_workers(summaries, out_path, key="final_test_error"):
  """Final error against N per algorithm, mean ± std over seeds, the N = 1 baseline
  dashed; runs with a failed seed marked ×. Returns the (closed) figure."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  _error_vs_workers(ax, summaries, key)
  ax.legend(fontsize=7, ncol=2)
  _save(fig, out_path)
  return fig


def _error_vs_workers(ax, summaries, key):
  failed_drawn = False
  names = ordered(s["algorithm"] for s in summaries if s["num_workers"] > 1)
  for a in names:
    pts = sorted((s["num_workers"], 100 * np.asarray(s[key])) for s in summaries
                 if s["algorithm"] == a and s["num_workers"] > 1)
    n = np.array([p[0] for p in pts])
    mean = np.array([p[1].mean() for p in pts])
    std = np.array([p[1].std() for p in pts])
    ax.plot(n, mean, marker="o", label=a, color=color(a, names))
    ax.fill_between(n, mean - std, mean + std, alpha=0.2, color=color(a, names))
    bad = [i for i, (m, _) in enumerate(pts) if any(
        next(s for s in summaries if s["algorithm"] == a and s["num_workers"] == m).get(
            "failed") or [])]
    if bad:  # runs with a seed that stopped learning
      ax.plot(n[bad], mean[bad], "x", color="k", ms=9, mew=2,
              label="a seed failed (train error at chance)" if not failed_drawn else None)
      failed_drawn = True
  for s in summaries:
    if s["num_workers"] == 1:
      ax.axhline(100 * np.mean(s[key]), color="k", ls="--", label=f"{s['algorithm']} (N = 1)")
  ax.set_xlabel("number of workers N")
  ax.set_ylabel(key.replace("_", " ") + " (%)")
  ax.set_xscale("log", base=2)
  measured = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  ax.set_xticks(measured, [str(n) for n in measured])  # ticks only at the measured N
  ax.minorticks_off()
  ax.grid(alpha=0.3)


def environment_label(results_dir) -> str:
  """A sweep's timing environment in words, from its first run's config.json."""
  configs = sorted(pathlib.Path(results_dir).glob("*/config.json"))
  config = json.loads(configs[0].read_text()) if configs else {}
  label = str(config.get("timing", "?"))
  if config.get("worker_speed_shape"):
    label += f", persistent worker speeds (shape {config['worker_speed_shape']:g})"
  return f"{label}\n{pathlib.Path(results_dir).name}"


def plot_environments(results_dirs, out_path, key="final_test_error"):
  """Final error against N of several sweeps side by side, one panel each on one y scale
  (e.g. the homogeneous and the heterogeneous environment: the GA paper's Figure 13
  beside its homogeneous figure). Returns the figure."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(results_dirs), figsize=(4.6 * len(results_dirs), 4),
                           sharey=True, squeeze=False)
  for ax, results_dir in zip(axes[0], results_dirs, strict=True):
    _error_vs_workers(ax, load_summaries(results_dir), key)
    ax.set_title(environment_label(results_dir), fontsize=9)
    ax.legend(fontsize=7, ncol=2)
  _save(fig, out_path)
  return fig


def load_metrics(run_dir) -> list[dict]:
  """The rows of one run's ``metrics.jsonl``."""
  path = pathlib.Path(run_dir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def time_to_target(results_dir, summaries, target_points: float = 1.0):
  """Per (algorithm, N): the simulated time at which test error first reaches the target.

  SPEC §7: the target is the single-worker baseline's mean final test error
  plus ``target_points`` percentage points. A seed's time is the simulated
  time of its first evaluation at or below the target (evaluations come at
  chunk ends, so this is resolved to a chunk, an epoch by default). Returns
  ``(target, {(algorithm, N): [time or None per seed]})``; None: not reached.
  """
  base = [s for s in summaries if s["num_workers"] == 1]
  if not base:
    return None, {}
  target = float(np.mean(base[0]["final_test_error"])) + target_points / 100
  out = {}
  for run_dir in sorted(p.parent for p in pathlib.Path(results_dir).glob("*/metrics.jsonl")):
    config = json.loads((run_dir / "config.json").read_text())
    per_seed = {}
    for row in load_metrics(run_dir):
      err = row.get("test/error")
      if err is None or not np.isfinite(err) or "time/simulated" not in row:
        continue
      per_seed.setdefault(row["seed"], None)
      if err <= target and per_seed[row["seed"]] is None:
        per_seed[row["seed"]] = (row["step"] * MEAN_BATCH_TIME if config["num_workers"] == 1
                                 else row["time/simulated"])
    out[(config["algorithm"], config["num_workers"])] = [per_seed[k] for k in sorted(per_seed)]
  return target, out


def time_to_target_table(results_dir, summaries, target_points: float = 1.0) -> str:
  """Markdown: mean simulated time to the target (SPEC §7) and the speedup over N = 1."""
  target, times = time_to_target(results_dir, summaries, target_points)
  if target is None:
    return "(no single-worker baseline: no target)"
  base_alg = next(s["algorithm"] for s in summaries if s["num_workers"] == 1)
  base = times.get((base_alg, 1), [])
  base_time = np.mean(base) if base and all(t is not None for t in base) else None
  workers = sorted({n for (_, n) in times if n > 1})
  algorithms = ordered(a for (a, n) in times if n > 1)
  base_text = "—" if base_time is None else f"{base_time:.0f}"
  lines = [f"Target: test error ≤ {100 * target:.2f}% (single-worker {base_alg}'s final "
           f"error + {target_points:g} points); simulated time units (one worker's mean "
           "batch time is 128), mean over seeds; in brackets the speedup over one worker of "
           f"average speed ({base_text}: the baseline's steps to the target × 128). "
           "\"not reached\": some seed never reached it.\n"]

  def text(a, n):
    t = times.get((a, n))
    if t is None:
      return "—"
    if any(x is None for x in t):
      return f"not reached ({sum(x is not None for x in t)}/{len(t)} seeds)"
    speedup = f" ({base_time / np.mean(t):.1f}×)" if base_time else ""
    return f"{np.mean(t):.0f}{speedup}"

  return "\n".join(lines + _table(algorithms, workers, text))


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, out_path):
  out_path = pathlib.Path(out_path)
  fig.tight_layout()
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"))
  _pyplot().close(fig)


# A fixed order and colour per algorithm (the registry's order, dana_jax.ALGORITHMS;
# tests/test_experiments.py checks they agree): a method and its DANA variant share a
# hue, the DANA one lighter.
ALGORITHM_ORDER = ("sgd", "asgd", "nag", "sa", "ga", "dana", "dana_sa", "dana_ga", "dc_asgd",
                   "delay_adaptive", "ringmaster", "msync", "rennala", "async_local_sgd",
                   "ssgd")
COLORS = {"sgd": "#000000", "asgd": "#878787", "nag": "#1b7837", "dana": "#7fbf7b",
          "sa": "#b35806", "dana_sa": "#f1a340", "ga": "#2166ac", "dana_ga": "#67a9cf",
          "dc_asgd": "#762a83", "delay_adaptive": "#c51b7d", "ringmaster": "#8c510a",
          "msync": "#01665e", "rennala": "#35978f", "async_local_sgd": "#d6604d",
          "ssgd": "#4d4d4d"}


def ordered(algorithms) -> list[str]:
  """Algorithms in ``ALGORITHM_ORDER`` (unknown names after, alphabetically)."""
  rank = {a: i for i, a in enumerate(ALGORITHM_ORDER)}
  return sorted(set(algorithms), key=lambda a: (rank.get(a, len(rank)), a))


def color(algorithm: str, others=()) -> str:
  """The algorithm's colour; an unknown one (or a grid cell's label) gets a matplotlib
  cycle colour by position."""
  if algorithm in COLORS:
    return COLORS[algorithm]
  unknown = [a for a in ordered(others) if a not in COLORS]
  return f"C{unknown.index(algorithm) % 10}" if algorithm in unknown else "C0"


def _run_dirs(results_dir) -> dict:
  """{(label, N): run directory} of the runs with a metrics file. The label is the
  algorithm, or, where several runs share an (algorithm, N) — the cells of a grid
  sweep — the algorithm with the cell's η and γ."""
  runs = []
  for run_dir in sorted(p.parent for p in pathlib.Path(results_dir).glob("*/metrics.jsonl")):
    config = json.loads((run_dir / "config.json").read_text())
    runs.append((config, run_dir))
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


def per_epoch(run_dir, key, scale=1.0):
  """(epochs, mean, std over seeds) of ``key``; non-finite values left out; None: none."""
  rows = [r for r in load_metrics(run_dir) if key in r and r[key] is not None
          and np.all(np.isfinite(r[key]))]
  if not rows:
    return None
  epochs = sorted({r["epoch"] for r in rows})
  values = [np.array([scale * r[key] for r in rows if r["epoch"] == e]) for e in epochs]
  return (np.array(epochs), np.array([v.mean() for v in values]),
          np.array([v.std() for v in values]))


def _panels(workers, height=2.8, rows_per_n=1):
  """A figure with one column per N (at most 4 per row) and ``rows_per_n`` rows each."""
  plt = _pyplot()
  cols = min(4, len(workers))
  rows = -(-len(workers) // cols) * rows_per_n
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 0.6, height * rows + 0.6),
                           squeeze=False)
  return fig, axes


def _finish(fig, axes, used, out_path, legend=True):
  """Hides unused panels, shares one figure legend (labels in first-seen order), saves
  PNG and PDF; returns the figure."""
  for ax in axes.ravel():
    if ax not in used:
      ax.set_visible(False)
  labels, handles = [], {}
  for ax in used:
    for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
      if label not in handles:
        handles[label] = h
        labels.append(label)
  rows_of_legend = -(-len(labels) // 5) if legend and labels else 0
  if rows_of_legend:
    fig.legend([handles[label] for label in labels], labels, loc="lower center",
               ncol=min(len(labels), 5), fontsize=8, frameon=False)
  # Room for the legend below the panels: about 0.22 in per legend row.
  legend_inches = 0.1 + 0.22 * rows_of_legend if rows_of_legend else 0.0
  fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
  out_path = pathlib.Path(out_path)
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"))
  _pyplot().close(fig)
  return fig


def plot_per_epoch(results_dir, key, out_path, ylabel=None, scale=1.0, algorithms=None,
                   log=False, baseline=True):
  """``key`` (e.g. ``test/error``, ``gap/rms``) against epoch, mean ± std over seeds: one
  panel per N > 1 (titled, one y scale for all), every algorithm (``algorithms``: only
  those) in its fixed colour and order, the single-worker baseline dashed in each
  (``baseline=False``: not drawn). Non-finite (diverged) points are left out. Returns
  the figure."""
  runs = _run_dirs(results_dir)
  names = ordered(a for (a, n) in runs if n > 1 and (algorithms is None or a in algorithms))
  workers = sorted({n for (a, n) in runs if n > 1 and a in names}) or [1]
  fig, axes = _panels(workers)
  used, top = [], -np.inf
  for ax, n in zip(axes.ravel(), workers, strict=False):
    curves = [(a, n, False) for a in names] + [
        (a, 1, True) for a in ordered(a for (a, m) in runs if m == 1) if baseline]
    for a, m, single in curves:
      curve = per_epoch(runs[(a, m)], key, scale) if (a, m) in runs else None
      if curve is None:
        continue
      epochs, mean, std = curve
      if single:
        ax.plot(epochs, mean, "--", color="k", label=f"{a} (N = 1)")
      else:
        ax.plot(epochs, mean, "-", color=color(a, names), label=a)
        ax.fill_between(epochs, mean - std, mean + std, alpha=0.15, color=color(a, names))
      top = max(top, float(np.max(mean + std)))
    ax.set_title(f"N = {n}")
    ax.set_xlabel("epoch")
    if log:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
    used.append(ax)
  for ax in used:
    ax.set_ylabel(ylabel or key)
  if used and np.isfinite(top):  # one scale for every panel
    lows = [ax.get_ylim()[0] for ax in used]
    low = min((v for v in lows if v > 0), default=top / 10) if log else min(lows)
    for ax in used:
      ax.set_ylim(low, top * (1.5 if log else 1.05))
  return _finish(fig, axes, used, out_path)


def lag_distribution(run_dir):
  """(epochs, mean lag, std of the lag over the epoch's events, histogram over the run)
  from ``lag/mean`` and ``lag/hist`` (bins 0 … 2N − 1 and ≥ 2N), summed over seeds."""
  rows = [r for r in load_metrics(run_dir) if "lag/hist" in r and "lag/mean" in r]
  if not rows:
    return None
  epochs = sorted({r["epoch"] for r in rows})
  means, stds = [], []
  for e in epochs:
    hist = np.sum([r["lag/hist"] for r in rows if r["epoch"] == e], axis=0).astype(float)
    lags = np.arange(hist.size)
    mean = float(np.sum(hist * lags) / max(hist.sum(), 1))
    means.append(float(np.mean([r["lag/mean"] for r in rows if r["epoch"] == e])))
    stds.append(float(np.sqrt(np.sum(hist * (lags - mean) ** 2) / max(hist.sum(), 1))))
  total = np.sum([r["lag/hist"] for r in rows], axis=0)
  return np.array(epochs), np.array(means), np.array(stds), total


def plot_lag(results_dir, out_path, algorithms=None):
  """The lag (GA paper, Figure 4, top): per N, the mean lag against epoch with its spread
  (± the std of the lag over the epoch's events) and, below, the lag histogram of the
  whole run (the last bin, lags ≥ 2N, counts as 2N in the std, which so
  understates a heavy tail); the lag panels share one scale, the histograms do not (their ranges are
  0 … 2N). The lag comes from the schedule, not the algorithm: a curve is drawn once
  for all algorithms whose lags are identical, labelled with all of them (Ringmaster's
  bounded lags or a round's zero lag get their own). Returns the figure."""
  runs = _run_dirs(results_dir)
  names = ordered(a for (a, n) in runs if n > 1 and (algorithms is None or a in algorithms))
  workers = sorted({n for (a, n) in runs if n > 1 and a in names}) or [1]
  fig, axes = _panels(workers, height=2.4, rows_per_n=2)
  cols = axes.shape[1]
  used = []
  for i, n in enumerate(workers):
    top, bottom = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
    drawn = []  # (lag distribution, [algorithms])
    for a in names:
      dist = lag_distribution(runs[(a, n)]) if (a, n) in runs else None
      if dist is None:
        continue
      same = next((d for d in drawn if np.array_equal(d[0][3], dist[3])), None)
      if same is None:
        drawn.append((dist, [a]))
      else:
        same[1].append(a)
    for dist, group in drawn:
      epochs, mean, std, total = dist
      label = ", ".join(group) if len(group) <= 3 else (
          f"{group[0]} and {len(group) - 1} more (one schedule)")
      c = color(group[0], names)
      top.plot(epochs, mean, "-", color=c, label=label)
      top.fill_between(epochs, np.maximum(mean - std, 0), mean + std, alpha=0.2, color=c)
      fraction = total / max(total.sum(), 1)
      bins = np.arange(total.size)
      bottom.step(bins, fraction, where="mid", color=c)
    top.set_title(f"N = {n}")
    top.set_xlabel("epoch")
    top.set_ylabel("lag τ (mean ± std)")
    bottom.set_xlabel(f"lag τ (last bin: ≥ {2 * n})")
    bottom.set_ylabel("fraction of steps")
    for ax in (top, bottom):
      ax.grid(alpha=0.3)
    used += [top, bottom]
  tops = used[0::2]
  if tops:  # the lag panels on one scale, so its growth with N reads across them
    high = max(ax.get_ylim()[1] for ax in tops)
    for ax in tops:
      ax.set_ylim(0, high)
  return _finish(fig, axes, used, out_path)


def error_against_time(run_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
  """(simulated time, mean test error, its std over seeds) at each evaluation of a run.

  Time as in :func:`time_to_target`: a single-worker run's is its step × 128 (one
  worker of average speed); otherwise the logged ``time/simulated``, averaged
  over seeds. Diverged (non-finite) evaluations are left out; an evaluation
  only some seeds reached finitely is averaged over those. None: no evaluation
  with a simulated time.
  """
  run_dir = pathlib.Path(run_dir)
  single = json.loads((run_dir / "config.json").read_text())["num_workers"] == 1
  by_step: dict = {}
  for row in load_metrics(run_dir):
    err = row.get("test/error")
    if err is None or not np.isfinite(err) or "time/simulated" not in row:
      continue
    time = row["step"] * MEAN_BATCH_TIME if single else row["time/simulated"]
    by_step.setdefault(row["step"], []).append((time, err))
  if not by_step:
    return None
  points = [np.asarray(by_step[k]) for k in sorted(by_step)]
  return (np.array([p[:, 0].mean() for p in points]), np.array([p[:, 1].mean() for p in points]),
          np.array([p[:, 1].std() for p in points]))


def plot_error_vs_time(results_dir, out_path, scale=100.0):
  """Test error against simulated time (SPEC §7): one panel per N > 1, every algorithm of
  the sweep on the same axes (asynchronous and synchronous alike) in its fixed colour,
  the single-worker baseline dashed in every panel; mean ± std over seeds; one y scale.
  Log time axis: N = 1 and SSGD take many times longer than the asynchronous runs.
  Returns the figure."""
  runs = {}
  for key, run_dir in _run_dirs(results_dir).items():
    curve = error_against_time(run_dir)
    if curve is not None:
      runs[key] = curve
  workers = sorted({n for (_, n) in runs if n > 1}) or [1]
  names = ordered(a for (a, n) in runs if n > 1)
  baselines = ordered(a for (a, n) in runs if n == 1)
  fig, axes = _panels(workers)
  used = []
  for ax, n in zip(axes.ravel(), workers, strict=False):
    for a in names:
      if (a, n) in runs:
        t, mean, std = runs[(a, n)]
        ax.plot(t, scale * mean, "-", marker=".", color=color(a, names), label=a)
        ax.fill_between(t, scale * (mean - std), scale * (mean + std), alpha=0.15,
                        color=color(a, names))
    for a in baselines:
      t, mean, _ = runs[(a, 1)]
      ax.plot(t, scale * mean, "k--", label=f"{a} (N = 1)")
    ax.set_title(f"N = {n}")
    ax.set_xscale("log")
    ax.set_xlabel("simulated time")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3)
    used.append(ax)
  low = min(ax.get_ylim()[0] for ax in used)
  high = max(ax.get_ylim()[1] for ax in used)
  for ax in used:
    ax.set_ylim(low, high)
  return _finish(fig, axes, used, out_path)


def plot_gamma_densities(path_json, out_path):
  """The timing models' densities with P(X > 1.25·mean) shaded (GA paper, Figure 3)."""
  plt = _pyplot()
  spec = json.loads(pathlib.Path(path_json).read_text())
  fig, ax = plt.subplots(figsize=(6, 4))
  for model in spec["models"]:
    x, y = np.asarray(model["x"]), np.asarray(model["density"])
    line, = ax.plot(x, y, label=f"{model['name']} (shape {model['shape']:g}): "
                    f"P(X > 1.25·mean) = {model['tail']:.3f}")
    tail = x > 1.25 * model["mean"]
    ax.fill_between(x[tail], y[tail], alpha=0.3, color=line.get_color())
  ax.set_xlabel("batch time")
  ax.set_ylabel("density")
  ax.legend(fontsize=7)
  _save(fig, out_path)


def plot_speedup(path_json, out_path):
  """Theoretical speedup of ASGD and SSGD vs N (GA paper, Figure 12)."""
  plt = _pyplot()
  spec = json.loads(pathlib.Path(path_json).read_text())
  fig, ax = plt.subplots(figsize=(5, 4))
  n = np.asarray(spec["num_workers"])
  for name in ("asgd", "ssgd"):
    ax.errorbar(n, spec[name], yerr=spec[name + "_std"], marker="o", label=name.upper())
  ax.plot(n, n, "k:", label="linear")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log", base=2)
  ax.set_xlabel("number of workers N")
  ax.set_ylabel("speedup over one worker")
  ax.legend()
  ax.grid(alpha=0.3)
  _save(fig, out_path)


def plot_grid_heatmap(summaries, out_path, key="final_test_error"):
  """Test accuracy over η × γ with the values written in the cells (GA paper, Fig. 9–11)."""
  plt = _pyplot()
  lrs, moms, acc = grid_accuracy(summaries, key)
  fig, ax = plt.subplots(figsize=(1 + 0.9 * len(lrs), 1 + 0.5 * len(moms)))
  image = ax.imshow(acc, cmap="viridis", aspect="auto")
  for i in range(len(moms)):
    for j in range(len(lrs)):
      if np.isfinite(acc[i, j]):
        ax.text(j, i, f"{acc[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
  ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
  ax.set_yticks(range(len(moms)), [f"{v:g}" for v in moms])
  ax.set_xlabel("learning rate η")
  ax.set_ylabel("momentum γ")
  fig.colorbar(image, label="test accuracy (%)")
  _save(fig, out_path)


REPORT_FIELDS = ("dataset", "model", "hidden", "algorithms", "baseline", "num_workers", "seeds",
                 "epochs", "batch_size", "learning_rate", "momentum", "weight_decay", "timing",
                 "worker_speed_shape", "execution")


def report_header(results_dir, summaries) -> str:
  """What was run: the command(s), the sweep's main config fields, device and versions,
  and the runtime (the sum of the simulations' wall times), from the run files."""
  results_dir = pathlib.Path(results_dir)
  configs = sorted(results_dir.glob("*/config.json"))
  config = json.loads(configs[0].read_text()) if configs else {}
  commands = sorted({s["command"] for s in summaries if s.get("command")})
  environments = sorted({json.dumps({k: v for k, v in s["environment"].items()
                                     if k != "finished"}, sort_keys=True)
                         for s in summaries if s.get("environment")})
  finished = sorted(s["environment"]["finished"] for s in summaries if s.get("environment"))
  # One wall time per simulation: the cells of a grid simulation share theirs.
  walls = {(s["algorithm"], s["num_workers"]): s["wall_seconds"] for s in summaries
           if "wall_seconds" in s}
  lines = [f"# {config.get('dataset', results_dir.name)}: {results_dir.name}", ""]
  lines.append("- Run with " + (", ".join(f"`{c}`" for c in commands) if commands
                             else "a command that was not recorded (older runs)") + ".")
  per_run = {"num_workers", "learning_rate", "momentum"}  # a run's config.json has its own
  swept = {k: sorted({s[k] for s in summaries if k in s}) for k in per_run}
  fields = [f"{k} = {', '.join(f'{v:g}' for v in swept[k])}" if k in per_run and swept[k]
            else f"{k} = {config[k]}" for k in REPORT_FIELDS
            if (k in per_run and swept[k]) or (
                k not in per_run and k in config and config[k] not in (None, "", [], ()))]
  if fields:
    lines.append("- Config: " + "; ".join(fields) + " (every field: each run's `config.json`).")
  for env in environments:
    e = json.loads(env)
    lines.append(f"- Device: {e['device']} ({e['backend']}, {e['devices']} device(s)), "
                 f"jax {e['jax']}, Python {e['python']}.")
  if walls:
    when = f", last run finished {finished[-1]}" if finished else ""
    lines.append(f"- Runtime: {sum(walls.values()):.0f} s of simulation over {len(walls)} "
                 f"simulations{when} (installing, loading data and drawing not counted).")
  return "\n".join(lines) + "\n"


FIGURES = (("test_error_vs_workers", "final test error against N"),
           ("test_error_vs_time", "test error against simulated time, one panel per N"),
           ("test_error_vs_epoch", "test error against epoch, one panel per N"),
           ("lag_vs_epoch", "lag against epoch and its histogram, per N"),
           ("gap_vs_epoch", "RMS gap against epoch, per N"))


def main(results_dir):
  results_dir = pathlib.Path(results_dir)
  summaries = load_summaries(results_dir)
  if not summaries:
    raise SystemExit(f"no */summary.json under {results_dir}")
  # A grid sweep has several (η, γ) cells per (algorithm, N); a main sweep one (its η
  # and γ may still differ between algorithms: options_by_algorithm).
  is_grid = len({(s["algorithm"], s["num_workers"]) for s in summaries}) < len(summaries)
  header = report_header(results_dir, summaries)
  if is_grid:  # one row per (algorithm, N) would hide all but one cell of the grid
    text = ("## Final test accuracy (%) over γ × η\n\n" + grid_table(summaries) +
            "\n\n## Final train accuracy (%) over γ × η\n\n" +
            grid_table(summaries, "final_train_error") + "\n")
  else:
    text = ("## Final test error (%)\n\n" + error_table(summaries) +
            "\n\n## Final train error (%)\n\n" + error_table(summaries, "final_train_error") +
            "\n\n## Mean raw gap RMS(Δ) over epochs\n\n" +
            error_table(summaries, "mean_gap_rms", scale=1.0, formats=(".3g", ".2g"),
                        baseline=False) +
            "\n\n## Simulated time to the target error (SPEC §7)\n\n" +
            time_to_target_table(results_dir, summaries) + "\n")
    if any("simulated_time" in s for s in summaries):
      text += ("\n## Total simulated time of the run\n\n" +
               error_table(summaries, "simulated_time", scale=1.0, formats=(".0f", ".0f")) +
               "\n")
    if any(any(s.get("diverged") or []) or any(s.get("failed") or []) for s in summaries):
      text += ("\n## Diverged and failed seeds\n\n" + outcome_table(summaries) + "\n")
    if any(sum(s.get("cancelled_jobs", [0])) for s in summaries):
      text += ("\n## Cancelled or discarded jobs per run\n\n" +
               error_table(summaries, "cancelled_jobs", scale=1.0, formats=(".0f", ".0f"),
                           baseline=False) + "\n")
  figures = [(name, what) for name, what in FIGURES if not is_grid or name not in (
      "test_error_vs_workers", "test_error_vs_time")]
  if is_grid:
    figures.insert(0, ("grid_heatmap", "test accuracy over η × γ"))
  text = (header + "\n" + "\n".join(f"![{what}]({name}.png)" for name, what in figures) +
          "\n\n" + text)
  (results_dir / "results.md").write_text(text)
  if is_grid:
    plot_grid_heatmap(summaries, results_dir / "grid_heatmap")
  else:
    plot_error_vs_workers(summaries, results_dir / "test_error_vs_workers")
    plot_error_vs_workers(summaries, results_dir / "train_error_vs_workers",
                          key="final_train_error")
    plot_error_vs_time(results_dir, results_dir / "test_error_vs_time")
  plot_per_epoch(results_dir, "test/error", results_dir / "test_error_vs_epoch",
                 ylabel="test error (%)", scale=100)
  # Figure 4 of the GA paper compares GA and DANA-GA; fall back to every run.
  names = {s["algorithm"] for s in summaries}
  gap_family = ("ga", "dana_ga") if {"ga", "dana_ga"} <= names else None
  plot_lag(results_dir, results_dir / "lag_vs_epoch", algorithms=gap_family)
  plot_per_epoch(results_dir, "gap/rms", results_dir / "gap_vs_epoch", ylabel="RMS gap Δ",
                 baseline=False,
                 algorithms=gap_family, log=True)
  print(text)
  print(f"wrote {results_dir / 'results.md'} and figures in {results_dir}")


def cli(argv=None):
  """``python -m experiments.plot RESULTS_DIR``: redraws a sweep's report from its files."""
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m experiments.plot",
      description="Regenerate a sweep's results.md (tables: final test and train error, "
      "gap, simulated time to the target error and speedup, total simulated time, "
      "cancelled jobs, diverged and failed seeds) and every figure (PNG and PDF: error "
      "against N, against epoch and against simulated time, lag and gap) from the run "
      "files alone: each run directory's config.json, metrics.jsonl and summary.json. "
      "Nothing is re-simulated.")
  parser.add_argument("results_dir", metavar="RESULTS_DIR",
                      help="the sweep's --workdir, holding one directory per run")
  parser.add_argument("--beside", metavar="OTHER_DIR", action="append", default=[],
                      help="another sweep (e.g. the heterogeneous environment): also draw "
                      "RESULTS_DIR/test_error_vs_workers_beside.png, the final error against "
                      "N of both side by side on one scale (repeatable)")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  for name, path in [("RESULTS_DIR", args.results_dir)] + [("--beside", b) for b in args.beside]:
    if not pathlib.Path(path).is_dir() or not load_summaries(path):
      raise SystemExit(f"error: {name}={path!r} holds no finished runs (*/summary.json): "
                       "give the --workdir of a finished sweep.")
  main(args.results_dir)
  if args.beside:
    out = pathlib.Path(args.results_dir) / "test_error_vs_workers_beside"
    plot_environments([args.results_dir, *args.beside], out)
    print(f"wrote {out.with_suffix('.png')}")


if __name__ == "__main__":
  cli()
