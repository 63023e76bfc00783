"""What every figure of a report shares: pyplot without a display, reproducible files,
mean ± std bands clipped to the metric's range, one panel per N, a shared legend, and
readable log-axis ticks."""

from __future__ import annotations

import pathlib

import numpy as np


def pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def save(fig, out_path):
  """Clips the bands to their axes' range, lays out, saves PNG and PDF and closes."""
  clip_bands(fig)
  out_path = pathlib.Path(out_path)
  fig.tight_layout()
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"), metadata={"CreationDate": None})  # reproducible bytes
  pyplot().close(fig)


def band(ax, x, low, high, color, alpha, bounds=(None, None)):
  """A mean ± std band, its edges clipped to the metric's range ``bounds`` (an error
  in percent lies in [0, 100]: a std band must not suggest 110%)."""
  lo, hi = bounds
  low, high = np.asarray(low, float), np.asarray(high, float)
  if lo is not None or hi is not None:
    low, high = np.clip(low, lo, hi), np.clip(high, lo, hi)
  return ax.fill_between(x, low, high, alpha=alpha, color=color, linewidth=0)


def clip_bands(fig):
  """Clips every band (a ``fill_between`` polygon) to its axes' final y range, so a
  band never reaches past the axis (on a log axis its lower edge mean − std may be
  ≤ 0, which is off the axis)."""
  for ax in fig.axes:
    if not ax.get_visible():
      continue
    low, high = sorted(ax.get_ylim())
    for band in ax.collections:
      if not type(band).__name__.startswith(("PolyCollection", "FillBetween")):
        continue
      for path in band.get_paths():
        path.vertices[:, 1] = np.clip(path.vertices[:, 1], low, high)


def metric_bounds(key, scale):
  """The range of a metric as drawn: an error (a fraction) times ``scale`` lies in
  [0, scale]; every other metric of the report (bits, gaps, lags, times) is ≥ 0."""
  return (0.0, float(scale)) if "error" in key else (0.0, None)


def _compact(value) -> str:
  """A tick label of a time axis in few characters: 500, 5k, 20k, 1.5M."""
  for size, suffix in ((1e6, "M"), (1e3, "k")):
    if abs(value) >= size:
      return f"{value / size:g}{suffix}"
  return f"{value:g}"


def readable_log_ticks(ax, most=4):
  """Labels a log x axis at 10^k where two or more are in range, else at 1-2-5 × 10^k
  (else 1…9 × 10^k, else the range's ends), at most ``most`` labels in compact text
  (20k, 100k), minor ticks unlabelled: the default labels every minor tick of an axis
  spanning about a decade, and at a panel width of 3 inches those run into each other."""
  from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
  low, high = sorted(ax.get_xlim())
  if not (np.isfinite(low) and np.isfinite(high)) or low <= 0:
    return
  k = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
  inside = lambda values: [v for v in values if low <= v <= high]
  ticks = []
  for subs in ((1,), (1, 2, 5), range(1, 10)):  # the fewest that give two labels
    ticks = inside(sorted(m * 10.0 ** e for e in k for m in subs))
    if len(ticks) >= 2:
      break
  if len(ticks) < 2:  # a range inside one step of 10^k: its ends, to two digits
    ticks = sorted({float(f"{v:.2g}") for v in (low * 1.05, high / 1.05)})
  if len(ticks) > most:  # keep every j-th, the first included
    ticks = ticks[::-(-len(ticks) // most)]
  ax.xaxis.set_major_locator(FixedLocator(ticks))
  ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
  ax.xaxis.set_minor_formatter(NullFormatter())


def panels(workers, height=2.8, rows_per_n=1):
  """A figure with one column per N (at most 4 per row) and ``rows_per_n`` rows each."""
  plt = pyplot()
  cols = min(4, len(workers))
  rows = -(-len(workers) // cols) * rows_per_n
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 0.6, height * rows + 0.6),
                           squeeze=False)
  return fig, axes


def finish_panels(fig, axes, used, out_path, legend=True):
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
  clip_bands(fig)
  fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
  out_path = pathlib.Path(out_path)
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"), metadata={"CreationDate": None})  # reproducible bytes
  pyplot().close(fig)
  return fig


def legend_outside(ax, handles):
  """The legend to the right of the axes, where it covers no data."""
  ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0, frameon=False)


def legend_below(ax, ncol=1):
  """The legend under the axes (below the x label), where it covers no data."""
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=ncol,
            frameon=False)
