"""The figures of a sweep's report, drawn from its run files (PNG and PDF).

Error against N (one sweep, or several environments side by side: the GA
paper's Figure 13 beside its homogeneous one), against epoch and against
simulated time (docs/spec.md §7), one panel per N; the lag with its spread and
histogram and the gap (the paper's Figure 4); the timing densities, the
speedup model and the η × γ heatmap. Every figure is returned (closed) so a
test can read its panels and legends.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from experiments.algorithm_display import colour, ordered, registered
from experiments.figure_layout import (
  band,
  finish_panels,
  legend_below,
  legend_outside,
  metric_bounds,
  panels,
  pyplot,
  readable_log_ticks,
  save,
)
from experiments.runfiles import (
  error_against_time,
  load_config,
  load_metrics,
  load_summaries,
  run_dirs,
)
from experiments.tables import grid_accuracy


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


OUTCOME_MARKS = {  # a point's marker by the worst outcome among its seeds
    "finite": dict(marker="o", ms=5),
    "diverged": dict(marker="^", ms=8, mec="k", mew=0.8),
    "failed": dict(marker="x", ms=9, mew=2)}
OUTCOME_LABELS = {"diverged": "a seed diverged (non-finite)",
                  "failed": "a seed failed (train error at chance)"}


def outcome(summary) -> str:
  """"diverged" if a seed of the run became non-finite, else "failed" if a seed ended at
  chance (finite), else "finite"."""
  if any(summary.get("diverged") or []):
    return "diverged"
  return "failed" if any(summary.get("failed") or []) else "finite"


def plot_error_vs_workers(summaries, out_path, key="final_test_error", scale=100.0,
                          ylabel=None):
  """Final error against N per algorithm, mean ± std over seeds (the band clipped to the
  metric's range), the N = 1 baseline dashed; a point with a diverged seed marked ▲, one
  with a failed seed ×, apart from the finite points' ●, each kind in the legend (outside
  the axes); a point with no finite value at all (a language model's diverged seeds
  have no bits to show) gets its ▲ at the top of the axis. Returns the (closed)
  figure."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(8, 4))
  handles = _error_vs_workers(ax, summaries, key, scale, ylabel)
  legend_outside(ax, handles)
  save(fig, out_path)
  return fig


def _error_vs_workers(ax, summaries, key, scale=100.0, ylabel=None) -> list:
  """Draws the error against N into ``ax``; returns the legend's handles: the
  algorithms, the baselines, then one per kind of marked point drawn."""
  from matplotlib.lines import Line2D
  bounds = metric_bounds(key, scale)
  names = ordered(s["algorithm"] for s in summaries if s["num_workers"] > 1)
  handles, kinds = [], set()
  for a in names:
    runs = sorted((s for s in summaries if s["algorithm"] == a and s["num_workers"] > 1),
                  key=lambda s: s["num_workers"])
    n = np.array([s["num_workers"] for s in runs])
    values = [scale * np.asarray(s[key], float) for s in runs]
    mean = np.array([v.mean() for v in values])
    std = np.array([v.std() for v in values])
    c = colour(a, names)
    ax.plot(n, mean, "-", color=c)
    band(ax, n, mean - std, mean + std, c, 0.2, bounds)
    kind = np.array([outcome(s) for s in runs])
    finite = np.isfinite(mean)
    for k, style in OUTCOME_MARKS.items():
      if np.any((kind == k) & finite):
        at = (kind == k) & finite
        ax.plot(n[at], mean[at], ls="none", color=c, label=f"_{a} {k}", **style)
        kinds.add(k)
    if not np.all(finite):  # no value to draw (every seed diverged): ▲ at the axis' top
      ax.plot(n[~finite], np.full((~finite).sum(), 0.97), ls="none", color=c,
              transform=ax.get_xaxis_transform(), clip_on=False, label=f"_{a} no value",
              **OUTCOME_MARKS["diverged"])
      kinds.add("diverged")
    handles.append(Line2D([], [], color=c, label=a, **OUTCOME_MARKS["finite"]))
  for s in summaries:
    if s["num_workers"] == 1:
      line = ax.axhline(scale * np.mean(s[key]), color="k", ls="--",
                        label=f"{s['algorithm']} (N = 1)")
      handles.append(line)
  handles += [Line2D([], [], ls="none", color="k", label=OUTCOME_LABELS[k],
                     **OUTCOME_MARKS[k]) for k in ("diverged", "failed") if k in kinds]
  ax.set_xlabel("number of workers N")
  ax.set_ylabel(ylabel or key.replace("_", " ") + " (%)")
  ax.set_xscale("log", base=2)
  measured = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  ax.set_xticks(measured, [str(n) for n in measured])  # ticks only at the measured N
  ax.minorticks_off()
  ax.grid(alpha=0.3)
  return handles


def environment_label(results_dir) -> str:
  """A sweep's timing environment in words, from its first run's config.json."""
  configs = sorted(pathlib.Path(results_dir).glob("*/config.json"))
  config = load_config(configs[0].parent) if configs else {}
  timing = config.get("timing", "?")  # {"name": ..., **arguments}; a name in older runs
  speeds = (timing.get("worker_speed_shape") if isinstance(timing, dict)
            else config.get("worker_speed_shape"))
  label = str(timing.get("name", "?") if isinstance(timing, dict) else timing)
  if speeds:
    label += f", persistent worker speeds (shape {speeds:g})"
  return f"{label}\n{pathlib.Path(results_dir).name}"


def plot_environments(results_dirs, out_path, key="final_test_error"):
  """Final error against N of several sweeps side by side, one panel each on one y scale
  (e.g. the homogeneous and the heterogeneous environment: the GA paper's Figure 13
  beside its homogeneous figure). Returns the figure."""
  plt = pyplot()
  fig, axes = plt.subplots(1, len(results_dirs), figsize=(4.6 * len(results_dirs) + 2.2, 4),
                           sharey=True, squeeze=False)
  handles = {}
  for ax, results_dir in zip(axes[0], results_dirs, strict=True):
    for h in _error_vs_workers(ax, load_summaries(results_dir), key):
      handles.setdefault(h.get_label(), h)
    ax.set_title(environment_label(results_dir), fontsize=9)
  # The algorithms in the registry's order, then the baselines, the marks' kinds last.
  marks = [OUTCOME_LABELS[k] for k in ("diverged", "failed")]
  names = registered(handles)
  rest = [label for label in handles if label not in names and label not in marks]
  legend_outside(axes[0, -1], [handles[label] for label in names + rest] +
                  [handles[label] for label in marks if label in handles])
  save(fig, out_path)
  return fig


def plot_per_epoch(results_dir, key, out_path, ylabel=None, scale=1.0, algorithms=None,
                   log=False, baseline=True):
  """``key`` (e.g. ``test/error``, ``gap/rms``) against epoch, mean ± std over seeds: one
  panel per N > 1 (titled, one y scale for all), every algorithm (``algorithms``: only
  those) in its fixed colour and order, the single-worker baseline dashed in each
  (``baseline=False``: not drawn). Non-finite (diverged) points are left out. Returns
  the figure."""
  runs = run_dirs(results_dir)
  names = ordered(a for (a, n) in runs if n > 1 and (algorithms is None or a in algorithms))
  workers = sorted({n for (a, n) in runs if n > 1 and a in names}) or [1]
  fig, axes = panels(workers)
  used, top = [], -np.inf
  bounds = metric_bounds(key, scale)
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
        ax.plot(epochs, mean, "-", color=colour(a, names), label=a)
        band(ax, epochs, mean - std, mean + std, colour(a, names), 0.15, bounds)
      top = max(top, float(np.max(np.clip(mean + std, None, bounds[1]))))
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
    high = top * 1.5 if log else (
        top + 0.05 * (top - low) if bounds[1] is None else min(top * 1.05, bounds[1] * 1.02))
    for ax in used:
      ax.set_ylim(low, high)
  return finish_panels(fig, axes, used, out_path)


def plot_lag(results_dir, out_path, algorithms=None):
  """The lag (GA paper, Figure 4, top): per N, the mean lag against epoch with its spread
  (± the std of the lag over the epoch's events) and, below, the lag histogram of the
  whole run (the last bin, lags ≥ 2N, counts as 2N in the std, which so
  understates a heavy tail); the lag panels share one scale, the histograms do not (their ranges are
  0 … 2N). The lag comes from the schedule, not the algorithm: a curve is drawn once
  for all algorithms whose lags are identical, labelled with all of them (Ringmaster's
  bounded lags or a round's zero lag get their own). Returns the figure."""
  runs = run_dirs(results_dir)
  names = ordered(a for (a, n) in runs if n > 1 and (algorithms is None or a in algorithms))
  workers = sorted({n for (a, n) in runs if n > 1 and a in names}) or [1]
  fig, axes = panels(workers, height=2.4, rows_per_n=2)
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
      c = colour(group[0], names)
      top.plot(epochs, mean, "-", color=c, label=label)
      band(top, epochs, mean - std, mean + std, c, 0.2, (0.0, None))
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
  return finish_panels(fig, axes, used, out_path)


def plot_error_vs_time(results_dir, out_path, scale=100.0, key="test/error",
                       ylabel="test error (%)", ymax=None):
  """Test error against simulated time (spec §7): one panel per N > 1, every algorithm of
  the sweep on the same axes (asynchronous and synchronous alike) in its fixed colour,
  the single-worker baseline dashed in every panel; mean ± std over seeds; one y scale.
  Log time axis: N = 1 and SSGD take many times longer than the asynchronous runs.
  ``key``: another metric (e.g. ``test/bits_per_token``), ``ymax`` its axis's top.
  Returns the figure."""
  runs = {}
  for label, run_dir in run_dirs(results_dir).items():
    curve = error_against_time(run_dir, key)
    if curve is not None:
      runs[label] = curve
  workers = sorted({n for (_, n) in runs if n > 1}) or [1]
  names = ordered(a for (a, n) in runs if n > 1)
  baselines = ordered(a for (a, n) in runs if n == 1)
  fig, axes = panels(workers)
  used = []
  for ax, n in zip(axes.ravel(), workers, strict=False):
    for a in names:
      if (a, n) in runs:
        t, mean, std = runs[(a, n)]
        ax.plot(t, scale * mean, "-", marker=".", color=colour(a, names), label=a)
        band(ax, t, scale * (mean - std), scale * (mean + std), colour(a, names), 0.15,
              metric_bounds(key, scale))
    for a in baselines:
      t, mean, _ = runs[(a, 1)]
      ax.plot(t, scale * mean, "k--", label=f"{a} (N = 1)")
    ax.set_title(f"N = {n}")
    ax.set_xscale("log")
    ax.set_xlabel("simulated time")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    used.append(ax)
  low = min(ax.get_ylim()[0] for ax in used)
  high = max(ax.get_ylim()[1] for ax in used)
  if ymax is not None:  # an unbounded metric ≥ 0: a diverging run's values are cut
    low, high = max(low, 0.0), min(high, ymax)
  for ax in used:
    ax.set_ylim(low, high)
    readable_log_ticks(ax)
  return finish_panels(fig, axes, used, out_path)


def plot_gamma_densities(path_json, out_path):
  """The timing models' densities with P(X > 1.25·mean) shaded (GA paper, Figure 3).
  Returns the figure."""
  plt = pyplot()
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
  legend_below(ax)
  save(fig, out_path)
  return fig


def plot_speedup(path_json, out_path):
  """Theoretical speedup of ASGD and SSGD vs N (GA paper, Figure 12). Returns the
  figure."""
  plt = pyplot()
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
  legend_below(ax, ncol=3)
  ax.grid(alpha=0.3)
  save(fig, out_path)
  return fig


def plot_grid_heatmap(summaries, out_path, key="final_test_error"):
  """Test accuracy over η × γ with the values written in the cells (GA paper, Fig. 9–11)."""
  plt = pyplot()
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
  save(fig, out_path)
