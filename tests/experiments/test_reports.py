"""The report's figures tell the truth: bands within the metric's range and the axis,
diverged and failed points marked apart from finite ones, readable time ticks, legends
off the data, one distinct colour and a place in the order for every registered
algorithm (the reports' and the quickstart notebook's figures)."""

import itertools
import json
import pathlib

import numpy as np
import pytest

from experiments import figure_layout, figures, plot

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _lab(hex_colour):
  """CIELAB (D65) of an sRGB colour ``#rrggbb``: the textbook formulas, not matplotlib's."""
  rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
  linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
  xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                  [0.0193, 0.1192, 0.9505]]) @ linear / np.array([0.95047, 1.0, 1.08883])
  f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
  return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_every_registered_algorithm_has_a_colour_of_its_own_and_a_place_in_the_order():
  import dana_jax as dj
  names = list(dj.ALGORITHMS)
  assert len(names) == len(set(names))
  assert plot.ordered(reversed(names)) == names
  colours = [plot.colour(a, names) for a in names]
  assert all(dj.ALGORITHMS[a].colour is not None for a in names)
  assert colours == [dj.ALGORITHMS[a].colour for a in names]  # a fixed colour, not a cycle's
  assert len(set(colours)) == len(names)
  # Distinct to the eye, not only in hex: CIE76 ΔE ≥ 15 between any two (≈ 2 is a
  # just-noticeable difference).
  closest = min(np.linalg.norm(_lab(a) - _lab(b)) for a, b in itertools.combinations(colours, 2))
  assert closest >= 15


def test_the_quickstart_figure_draws_every_algorithm_in_its_own_colour():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  import dana_jax as dj
  notebook = json.loads((ROOT / "colab" / "quickstart.ipynb").read_text())
  cell = next("".join(c["source"]) for c in notebook["cells"]
              if c["cell_type"] == "code" and "plt.subplots" in "".join(c["source"]))
  history = [{"epoch": e, "replicas": [{"lag/mean": 3.0, "gap/rms": 0.1, "test/error": 0.2}]}
             for e in (1.0, 2.0)]
  histories = {name: history for name in sorted(dj.ALGORITHMS)}  # the notebook's order
  plt.close("all")
  namespace = {"histories": histories, "np": np, "plt": plt}
  exec(compile(cell, "quickstart figure", "exec"), namespace)  # plt.show(): Agg, nothing
  fig = plt.gcf()
  for ax in fig.axes:
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(dj.ALGORITHMS)
    assert [line.get_color() for line in lines] == [a.colour for a in dj.ALGORITHMS.values()]
  assert [t.get_text() for t in fig.legends[0].get_texts()] == list(dj.ALGORITHMS)
  _assert_legends_off_the_data(fig)
  plt.close(fig)


def _summary(algorithm, n, errors, diverged=None, failed=None):
  k = len(errors)
  return {"algorithm": algorithm, "num_workers": n, "final_test_error": errors,
          "seeds": list(range(k)), "diverged": diverged or [False] * k,
          "failed": failed or [False] * k,
          "failed_from_epoch": [2.0 if f else None for f in (failed or [False] * k)]}


def _bands(ax):
  return [band for band in ax.collections if len(band.get_paths())]


def _band_range(ax):
  ys = np.concatenate([p.vertices[:, 1] for band in _bands(ax) for p in band.get_paths()])
  return ys.min(), ys.max()


def test_error_against_n_clips_its_bands_and_marks_diverged_and_failed_points(tmp_path):
  summaries = [
      _summary("sgd", 1, [0.1]),
      # N = 4: finite; N = 8: a seed diverged (mean + std > 100%); N = 16: a seed failed.
      _summary("sa", 4, [0.1, 0.12, 0.14]),
      _summary("sa", 8, [0.3, 0.93, 0.93], diverged=[False, True, True]),
      _summary("sa", 16, [0.2, 0.9, 0.2], failed=[False, True, False]),
      _summary("ga", 4, [0.1, 0.1, 0.1]), _summary("ga", 8, [0.05, 0.1, 0.12]),
      _summary("ga", 16, [0.1, 0.1, 0.2])]
  assert 100 * np.mean([0.3, 0.93, 0.93]) + 100 * np.std([0.3, 0.93, 0.93]) > 100
  fig = plot.plot_error_vs_workers(summaries, tmp_path / "w")
  ax = fig.axes[0]
  low, high = _band_range(ax)
  assert low >= 0.0 and high <= 100.0 + 1e-9  # an error in percent lies in [0, 100]
  assert high == pytest.approx(100.0)  # clipped, not dropped
  bottom, top = ax.get_ylim()
  assert bottom <= low and high <= top

  def marked(marker, colour):
    points = [(x, y) for line in ax.get_lines() if line.get_marker() == marker
              and line.get_color() == colour for x, y in zip(line.get_xdata(),
                                                              line.get_ydata(), strict=True)]
    return sorted((int(x), round(float(y), 6)) for x, y in points)

  sa, ga = plot.colour("sa"), plot.colour("ga")
  assert marked("o", sa) == [(4, 12.0)]  # finite: the plain marker, only there
  assert marked("^", sa) == [(8, round(100 * np.mean([0.3, 0.93, 0.93]), 6))]
  assert marked("x", sa) == [(16, round(100 * np.mean([0.2, 0.9, 0.2]), 6))]
  assert marked("o", ga) == [(4, 10.0), (8, 9.0), (16, round(40 / 3, 6))]
  assert marked("^", ga) == marked("x", ga) == []
  curve = [line for line in ax.get_lines() if line.get_color() == sa
           and line.get_linestyle() == "-"]
  assert len(curve) == 1 and curve[0].get_marker() in ("", "None", None)
  assert list(curve[0].get_xdata()) == [4, 8, 16]  # the curve joins every point
  legend = ax.get_legend()
  assert [t.get_text() for t in legend.get_texts()] == [
      "sa", "ga", "sgd (N = 1)", figures.OUTCOME_LABELS["diverged"],
      figures.OUTCOME_LABELS["failed"]]
  assert [h.get_marker() for h in legend.legend_handles][-2:] == ["^", "x"]
  _assert_legends_off_the_data(fig)
  # Without a diverged or failed seed, no mark and no entry for one.
  finite = [s for s in summaries if s["algorithm"] != "sa"]
  ax = plot.plot_error_vs_workers(finite, tmp_path / "f").axes[0]
  assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ga", "sgd (N = 1)"]
  # Beside another environment: one legend, off the data, the marks' kinds last.
  for name, sweep in [("a", summaries), ("b", finite)]:
    for s in sweep:
      run = tmp_path / name / f"{s['algorithm']}_N{s['num_workers']}"
      run.mkdir(parents=True)
      (run / "summary.json").write_text(json.dumps(s))
      (run / "config.json").write_text(json.dumps({"timing": "homogeneous", **s}))
  fig = plot.plot_environments([tmp_path / "b", tmp_path / "a"], tmp_path / "both")
  legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
  assert len(legends) == 1 and [t.get_text() for t in legends[0].get_texts()] == [
      "sa", "ga", "sgd (N = 1)", figures.OUTCOME_LABELS["diverged"],
      figures.OUTCOME_LABELS["failed"]]
  for ax in fig.axes:
    assert _band_range(ax)[1] <= 100.0 + 1e-9
  _assert_legends_off_the_data(fig)


def _run_dir(root, name, algorithm, n, rows):
  run = root / name
  run.mkdir(parents=True)
  (run / "config.json").write_text(json.dumps({"algorithm": algorithm, "num_workers": n}))
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rows(errors_by_seed, times, hist_n=4):
  hist = [0] * (2 * hist_n + 1)
  hist[hist_n - 1] = 5
  return [{"seed": k, "step": 10 * (i + 1), "epoch": float(i + 1), "test/error": e,
           "gap/rms": 1e-3 * (1 + k) * (i + 1), "lag/mean": hist_n - 1.0, "lag/hist": hist,
           "time/simulated": t}
          for k, errors in enumerate(errors_by_seed)
          for i, (e, t) in enumerate(zip(errors, times, strict=True))]


def _sweep(root):
  """N = 4 spans 1.5e4 … 5e5 in time (about one and a half decades, where the default
  labels every minor tick), N = 32 2e3 … 5e5; SA's seeds spread past 100%."""
  times4 = np.geomspace(1.5e4, 1.2e5, 6).tolist()
  times32 = np.geomspace(2e3, 1.6e4, 6).tolist()
  spread = [[0.2, 0.2, 0.15, 0.15, 0.1, 0.1], [0.95, 0.99, 0.99, 0.99, 0.99, 0.99]]
  _run_dir(root, "sgd_N1", "sgd", 1, [
      {"seed": 0, "step": s, "epoch": s / 1000, "test/error": 0.1, "time/simulated": 0.0}
      for s in (500, 1000, 2000, 3900)])  # × 128: up to 5e5
  for n, times in ((4, times4), (32, times32)):
    _run_dir(root, f"sa_N{n}", "sa", n, _rows(spread, times, n))
    _run_dir(root, f"ga_N{n}", "ga", n, _rows([[0.3, 0.2, 0.15, 0.1, 0.1, 0.1]] * 2, times, n))


def test_time_and_epoch_figures_clip_bands_and_label_ticks_readably(tmp_path):
  _sweep(tmp_path)
  fig = plot.plot_error_vs_time(tmp_path, tmp_path / "t")
  panels = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in panels] == ["N = 4", "N = 32"]
  assert fig.get_size_inches()[0] <= 3.2 * 2 + 0.6  # the report's width per panel
  renderer = _renderer(fig)
  for ax in panels:
    low, high = _band_range(ax)
    assert 0.0 <= low and high <= min(100.0, ax.get_ylim()[1]) + 1e-9
    labels = [t for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)
              if t.get_visible() and t.get_text()
              and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(labels) >= 2, "a time axis needs at least two labelled ticks"
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
      assert not a.overlaps(b), [t.get_text() for t in labels]
  _assert_legends_off_the_data(fig)
  fig = plot.plot_per_epoch(tmp_path, "test/error", tmp_path / "e", scale=100)
  for ax in [ax for ax in fig.axes if ax.get_visible()]:
    low, high = _band_range(ax)
    assert 0.0 <= low and high <= 100.0 + 1e-9 and high <= ax.get_ylim()[1]
  _assert_legends_off_the_data(fig)
  # On a log axis a band's lower edge (mean − std ≤ 0 here) ends at the axis.
  fig = plot.plot_per_epoch(tmp_path, "gap/rms", tmp_path / "g", log=True, baseline=False)
  for ax in [ax for ax in fig.axes if ax.get_visible()]:
    low, high = _band_range(ax)
    assert ax.get_ylim()[0] <= low and high <= ax.get_ylim()[1]
  fig = plot.plot_lag(tmp_path, tmp_path / "l")
  _assert_legends_off_the_data(fig)


def test_speedup_and_density_legends_lie_off_the_data(tmp_path):
  (tmp_path / "s.json").write_text(json.dumps(
      {"num_workers": [1, 2, 4], "asgd": [1, 2, 4], "asgd_std": [0, 0, 0],
       "ssgd": [1, 1.9, 3.6], "ssgd_std": [0, 0, 0]}))
  x = np.linspace(0, 300, 50)
  (tmp_path / "d.json").write_text(json.dumps({"models": [
      {"name": "homogeneous", "shape": 100.0, "mean": 128.0, "tail": 0.009, "x": x.tolist(),
       "density": np.exp(-((x - 128) / 13) ** 2).tolist()}]}))
  for draw, name in ((plot.plot_speedup, "s"), (plot.plot_gamma_densities, "d")):
    fig = draw(tmp_path / f"{name}.json", tmp_path / name)
    assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.pdf").exists()
    _assert_legends_off_the_data(fig)


def _assert_legends_off_the_data(fig):
  """No legend (of an axes or of the figure) covers any visible panel's data area."""
  renderer = _renderer(fig)
  legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
  assert legends, "a figure with a legend"
  panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
  for legend in legends:
    box = legend.get_window_extent(renderer)
    for panel in panels:
      assert not box.overlaps(panel), (box, panel)


def _renderer(fig):
  """A drawn Agg renderer of a (closed) figure: the positions of its texts as saved."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return canvas.get_renderer()


def test_a_point_without_a_finite_value_is_still_marked_diverged(tmp_path):
  """A language model's diverged seeds have no bits per byte (NaN): nothing to draw at
  a height, so the ▲ sits at the top of the axis, not nowhere."""
  summaries = [{"algorithm": "nag", "num_workers": n, "final_bits_per_byte": [np.nan] * 2,
                "diverged": [True, True]} for n in (4, 8)]
  summaries += [{"algorithm": "ga", "num_workers": n, "final_bits_per_byte": [4.0, 4.2],
                 "diverged": [False, False]} for n in (4, 8)]
  fig = plot.plot_error_vs_workers(summaries, tmp_path / "b", key="final_bits_per_byte",
                                   scale=1.0, ylabel="bits")
  ax = fig.axes[0]
  top = [line for line in ax.get_lines() if line.get_marker() == "^"]
  assert len(top) == 1 and list(top[0].get_xdata()) == [4, 8]
  assert top[0].get_transform() == ax.get_xaxis_transform()  # y in axes units
  assert all(0.9 <= y <= 1.0 for y in top[0].get_ydata())
  assert figures.OUTCOME_LABELS["diverged"] in [t.get_text()
                                                for t in ax.get_legend().get_texts()]


def test_each_committed_report_has_the_tables_its_run_files_give():
  """``results/*/results.md`` is current: the error and time-to-target tables the shipped
  code draws from the committed run files are in it, as committed (so the README, which
  is checked against the same files, and the reports agree)."""
  checked = 0
  for results_dir in sorted(p for p in (ROOT / "results").iterdir() if p.is_dir()):
    summaries = plot.load_summaries(results_dir)
    if not summaries or not (results_dir / "results.md").exists():
      continue
    report = (results_dir / "results.md").read_text()
    if len({(s["algorithm"], s["num_workers"]) for s in summaries}) < len(summaries):
      assert plot.grid_table(summaries) in report, results_dir.name
      continue
    assert plot.error_table(summaries) in report, results_dir.name
    assert plot.error_table(summaries, "final_train_error") in report, results_dir.name
    if any((d / "metrics.jsonl").exists() for d in results_dir.iterdir() if d.is_dir()):
      assert plot.time_to_target_table(results_dir, summaries) in report, results_dir.name
    checked += 1
  assert checked >= 12


@pytest.mark.parametrize("span", [(1.5e4, 5e5), (1.6e4, 1.9e4), (2e3, 5e5), (300, 1.2e6),
                                  (5e3, 4e4), (40, 90)])
def test_a_time_axis_of_any_span_has_two_or_more_labels_that_do_not_touch(span):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(3.2, 2.8))  # one report panel
  ax.plot(span, (1, 2))
  ax.set_xscale("log")
  ax.set_xlim(*span)
  figure_layout.readable_log_ticks(ax)
  renderer = _renderer(fig)
  labels = [t for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)
            if t.get_visible() and t.get_text() and span[0] <= t.get_position()[0] <= span[1]]
  assert 2 <= len(labels) <= 4, [t.get_text() for t in labels]
  boxes = [t.get_window_extent(renderer) for t in labels]
  assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
  assert all(len(t.get_text()) <= 5 for t in labels)  # compact: 20k, 1.5M
  plt.close(fig)
