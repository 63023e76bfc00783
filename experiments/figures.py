"""The figures of a sweep's report, drawn from its run files (PNG and PDF).

Error against N (one sweep, or several environments side by side: the GA
paper's Figure 13 beside its homogeneous one), against epoch and against
simulated time (SPEC §7), one panel per N; the lag with its spread and
histogram and the gap (the paper's Figure 4); the timing densities, the
speedup model and the η × γ heatmap. Every figure is returned (closed) so a
test can read its panels and legends.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from experiments.runfiles import (
  error_against_time,
  load_config,
  load_metrics,
  load_summaries,
  ordered,
  run_dirs,
)
from experiments.tables import grid_accuracy


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, out_path):
  out_path = pathlib.Path(out_path)
  fig.tight_layout()
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"), metadata={"CreationDate": None})  # reproducible bytes
  _pyplot().close(fig)


# A fixed colour per algorithm: a method and its DANA variant share a hue, the DANA
# one lighter (GA and DANA-GA blues, SA and DANA-SA oranges, NAG and DANA greens).
COLORS = {"sgd": "#000000", "asgd": "#878787", "nag": "#1b7837", "dana": "#7fbf7b",
          "sa": "#b35806", "dana_sa": "#f1a340", "ga": "#2166ac", "dana_ga": "#67a9cf",
          "dc_asgd": "#762a83", "delay_adaptive": "#c51b7d", "ringmaster": "#8c510a",
          "msync": "#01665e", "rennala": "#35978f", "async_local_sgd": "#d6604d",
          "ssgd": "#4d4d4d"}


def color(algorithm: str, others=()) -> str:
  """The algorithm's colour; an unknown one (or a grid cell's label) gets a matplotlib
  cycle colour by position."""
  if algorithm in COLORS:
    return COLORS[algorithm]
  unknown = [a for a in ordered(others) if a not in COLORS]
  return f"C{unknown.index(algorithm) % 10}" if algorithm in unknown else "C0"


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
  fig.savefig(out_path.with_suffix(".pdf"), metadata={"CreationDate": None})  # reproducible bytes
  _pyplot().close(fig)
  return fig


def plot_error_vs_workers(summaries, out_path, key="final_test_error", scale=100.0,
                          ylabel=None):
  """Final error against N per algorithm, mean ± std over seeds, the N = 1 baseline
  dashed; runs with a failed seed marked ×. Returns the (closed) figure."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  _error_vs_workers(ax, summaries, key, scale, ylabel)
  ax.legend(fontsize=7, ncol=2)
  _save(fig, out_path)
  return fig


def _error_vs_workers(ax, summaries, key, scale=100.0, ylabel=None):
  failed = []
  cell = {(s["algorithm"], s["num_workers"]): s for s in summaries}
  names = ordered(s["algorithm"] for s in summaries if s["num_workers"] > 1)
  for a in names:
    pts = sorted((s["num_workers"], scale * np.asarray(s[key], float)) for s in summaries
                 if s["algorithm"] == a and s["num_workers"] > 1)
    n = np.array([p[0] for p in pts])
    mean = np.array([p[1].mean() for p in pts])
    std = np.array([p[1].std() for p in pts])
    ax.plot(n, mean, marker="o", label=a, color=color(a, names))
    ax.fill_between(n, mean - std, mean + std, alpha=0.2, color=color(a, names))
    failed += [(n[i], mean[i]) for i, (m, _) in enumerate(pts)
               if any(cell[(a, m)].get("failed") or [])]  # a seed stopped learning
  for s in summaries:
    if s["num_workers"] == 1:
      ax.axhline(scale * np.mean(s[key]), color="k", ls="--",
                 label=f"{s['algorithm']} (N = 1)")
  if failed:  # one mark for all, last in the legend (the algorithms keep their order)
    ax.plot(*np.array(failed).T, "x", color="k", ms=9, mew=2, ls="none",
            label="a seed failed (train error at chance)")
  ax.set_xlabel("number of workers N")
  ax.set_ylabel(ylabel or key.replace("_", " ") + " (%)")
  ax.set_xscale("log", base=2)
  measured = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  ax.set_xticks(measured, [str(n) for n in measured])  # ticks only at the measured N
  ax.minorticks_off()
  ax.grid(alpha=0.3)


def environment_label(results_dir) -> str:
  """A sweep's timing environment in words, from its first run's config.json."""
  configs = sorted(pathlib.Path(results_dir).glob("*/config.json"))
  config = load_config(configs[0].parent) if configs else {}
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


def plot_error_vs_time(results_dir, out_path, scale=100.0, key="test/error",
                       ylabel="test error (%)", ymax=None):
  """Test error against simulated time (SPEC §7): one panel per N > 1, every algorithm of
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
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    used.append(ax)
  low = min(ax.get_ylim()[0] for ax in used)
  high = max(ax.get_ylim()[1] for ax in used)
  if ymax is not None:  # an unbounded metric ≥ 0: a diverging run's values are cut
    low, high = max(low, 0.0), min(high, ymax)
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
