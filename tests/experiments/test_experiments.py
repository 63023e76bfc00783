"""Experiment drivers end to end on tiny settings: files written, resume, divergence, figures."""

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from experiments import builders, plot, train  # noqa: E402
from experiments.configs import cifar10, digits, fashion_mnist, imagenet  # noqa: E402


def tiny(config, **overrides):
  config.update(dict(epochs=2, seeds=(0, 1), batch_size=8, train_eval_examples=16,
                     model="mlp", hidden=(8,), warmup_epochs=0.5, decay_epochs=(1.0,)))
  config.update(overrides)
  return config


def test_cifar10_presets_build():
  for preset in cifar10.PRESETS:
    config = cifar10.get_config(preset)
    assert train.sweep_points(config)
  grid = train.sweep_points(cifar10.get_config("asgd_grid"))
  assert len(grid) == 1 and len(grid[0]["cells"]) == 70  # one program, 70 replicas
  with pytest.raises(ValueError, match="preset='fig99'"):
    cifar10.get_config("fig99")


@pytest.mark.slow
def test_cifar10_sweep_under_mock_data_resumes_and_plots(tmp_path):
  config = tiny(cifar10.get_config("main"), num_workers=(2, 3), algorithms=("ga", "dana_ga"))
  with tfds.testing.mock_data(num_examples=48):
    summaries = train.run_sweep(config, tmp_path)
  assert len(summaries) == 5  # sgd at N = 1, two algorithms × two N
  for point in train.sweep_points(config):
    run = tmp_path / point["cells"][0]["name"]
    assert json.loads((run / "config.json").read_text())["algorithm"] == point["algorithm"]
    rows = plot.load_metrics(run)
    assert {r["seed"] for r in rows} == {0, 1}
    assert all("test/error" in r and "lag/mean" in r for r in rows)
  stamp = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/summary.json")}
  with tfds.testing.mock_data(num_examples=48):
    train.run_sweep(config, tmp_path)  # finished runs are skipped
  assert stamp == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/summary.json")}
  plot.main(tmp_path)
  for name in ("results.md", "test_error_vs_workers.png", "test_error_vs_workers.pdf",
               "train_error_vs_workers.png", "test_error_vs_epoch.png", "lag_vs_epoch.png",
               "gap_vs_epoch.png", "test_error_vs_time.png", "lag_vs_epoch.pdf"):
    assert (tmp_path / name).exists(), name
  # The report opens with what was run, then the figures, then the tables.
  report = (tmp_path / "results.md").read_text()
  summary = json.loads((tmp_path / "ga_N2" / "summary.json").read_text())
  assert summary["command"].startswith("python ") and summary["environment"]["jax"]
  assert report.startswith(f"# cifar10: {tmp_path.name}\n\n- Run with `")
  assert "- Config: dataset = cifar10; model = mlp" in report and "num_workers = 1, 2, 3" in report
  assert f"- Device: {summary['environment']['device']}" in report
  assert report.index("![test error against simulated time") < report.index("## Final test")


def test_diverged_run_is_recorded_and_the_sweep_goes_on(tmp_path):
  config = tiny(digits.get_config(), algorithms=("nag", "ga"), num_workers=(4,), baseline="",
                learning_rate=1e6)
  summaries = train.run_sweep(config, tmp_path)
  assert len(summaries) == 2
  nag = summaries[0]
  assert nag["diverged"] == [True, True]
  assert all(isinstance(step, int) and step > 0 for step in nag["diverged_at_step"])
  for metrics in nag["metrics_at_divergence"]:
    assert metrics["nonfinite"] is True and "loss/train" in metrics and "test/error" in metrics
  rows = plot.load_metrics(tmp_path / "nag_N4")
  assert max(r["step"] for r in rows) == max(nag["diverged_at_step"])  # stopped there
  assert nag["failed"] == [False, False] and nag["failed_from_epoch"] == [None, None]
  plot.main(tmp_path)
  assert "| nag | 2 diverged (step" in (tmp_path / "results.md").read_text()


def test_a_finite_run_at_chance_to_the_end_is_failed_from_that_epoch():
  at = train.stopped_learning_at
  assert at([1, 2, 3, 4], [0.5, 0.9, 0.88, 0.9], 10) == 2.0  # at chance (≥ 0.85) from 2 on
  assert at([1, 2, 3, 4], [0.9, 0.9, 0.3, 0.2], 10) is None  # learned later: not failed
  assert at([1, 2, 3], [0.9, 0.5, 0.86], 10) == 3.0  # only the last evaluation
  assert at([1, 2, 3], [0.5, float("nan"), None], 10) is None  # nothing finite at chance
  assert at([1, 2], [0.97, 0.99], 100) == 2.0 and at([1, 2], [0.97, 0.98], 100) is None
  assert at([1, 2], [0.97, 0.99], 25) == 1.0  # at chance: accuracy ≤ min(1.5/C, 1/C + 0.05)
  assert at([1, 2], [0.3, 0.47], 2) == 2.0 and at([1, 2], [0.5, 0.3], 2) is None


def test_failed_seeds_are_marked_in_the_tables_and_the_figure(tmp_path):
  summaries = [
      {"algorithm": "sgd", "num_workers": 1, "final_test_error": [0.1], "seeds": [0]},
      {"algorithm": "nag", "num_workers": 8, "final_test_error": [0.9, 0.2], "seeds": [0, 1],
       "failed": [True, False], "failed_from_epoch": [3.0, None],
       "diverged": [False, False]},
      {"algorithm": "nag", "num_workers": 4, "final_test_error": [0.2, 0.2], "seeds": [0, 1],
       "failed": [False, False], "failed_from_epoch": [None, None],
       "diverged": [False, True], "diverged_at_step": [None, 70]}]
  table = plot.error_table(summaries)
  assert "| nag | 20.00 ± 0.00 (diverged) | 55.00 ± 35.00 (failed 1/2 from epoch 3) |" in table
  unmarked = plot.error_table(summaries, marks=False)  # a time's table: no marks
  assert "| nag | 20.00 ± 0.00 | 55.00 ± 35.00 |" in unmarked
  outcomes = plot.outcome_table(summaries)
  assert "| nag | — | 1 diverged (step 70) | failed 1/2 from epoch 3 |" in outcomes
  assert "| sgd | 0 of 1 | — | — |" in outcomes
  ax = plot.plot_error_vs_workers(summaries, tmp_path / "w").axes[0]
  marks = [line for line in ax.get_lines() if line.get_marker() == "x"]
  assert len(marks) == 1 and list(marks[0].get_xdata()) == [8]
  np.testing.assert_allclose(marks[0].get_ydata(), [55.0])
  # The marks last: N = 4's diverged seed has its own mark too, apart from finite points.
  assert [t.get_text() for t in ax.get_legend().get_texts()] == [
      "nag", "sgd (N = 1)", "a seed diverged (non-finite)",
      "a seed failed (train error at chance)"]


def test_grid_sweep_draws_a_heatmap(tmp_path):
  config = tiny(digits.get_config(), sweep="grid", algorithms=("asgd",), num_workers=(4,),
                baseline="", seeds=(0,))
  config.grid_learning_rates = (0.01, 0.1)
  config.grid_momenta = (0.5, -0.5)
  summaries = train.run_sweep(config, tmp_path)
  assert len(summaries) == 4 and all(s["replicas_in_program"] == 4 for s in summaries)
  plot.main(tmp_path)
  assert (tmp_path / "grid_heatmap.png").exists()
  # The per-epoch figure draws every cell, labelled with its η and γ.
  fig = plot.plot_per_epoch(tmp_path, "test/error", tmp_path / "cells")
  labels = sorted(line.get_label() for line in fig.axes[0].get_lines())
  assert labels == ["asgd η=0.01 γ=-0.5", "asgd η=0.01 γ=0.5", "asgd η=0.1 γ=-0.5",
                    "asgd η=0.1 γ=0.5"]
  table = (tmp_path / "results.md").read_text()
  for s in summaries:  # every (η, γ) cell appears, not one per (algorithm, N)
    assert f"{100 * (1 - s['final_test_error'][0]):.2f}" in table
  assert "| 0.5 |" in table and "| -0.5 |" in table
  # Each cell equals the same (η, γ) simulated alone.
  alone = tiny(digits.get_config(), algorithms=("asgd",), num_workers=(4,), baseline="",
               seeds=(0,), learning_rate=0.1, momentum=-0.5)
  single = train.run_sweep(alone, tmp_path / "alone")[0]
  cell = next(s for s in summaries if s["learning_rate"] == 0.1 and s["momentum"] == -0.5)
  assert abs(cell["final_test_error"][0] - single["final_test_error"][0]) < 1e-9


def test_fashion_mnist_config_and_unknown_sweep():
  config = fashion_mnist.get_config()
  assert len(train.sweep_points(config)) == 1 + 5 * 4
  assert all(len(p["cells"]) == 1 for p in train.sweep_points(config))
  config.sweep = "spiral"
  with pytest.raises(ValueError, match="config.sweep='spiral'"):
    train.sweep_points(config)
  config.model = "vit"
  with pytest.raises(ValueError, match="config.model='vit'"):
    builders.build_model(config, (28, 28, 1), 10)


def test_speedup_entry_point(tmp_path):
  out = subprocess.run([sys.executable, "-m", "experiments.speedup", f"--workdir={tmp_path}",
                        "--config.runs=2", "--config.iterations=4000",
                        "--config.num_workers=1,4,16"],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads((tmp_path / "speedup.json").read_text())
  assert abs(result["ssgd"][1] - 3.62) < 0.05
  for name in ("speedup.png", "gamma_densities.png", "speedup.md"):
    assert (tmp_path / name).exists()
  tails = {m["name"]: m["tail"] for m in json.loads(
      (tmp_path / "densities.json").read_text())["models"]}
  assert tails["homogeneous"] < 0.02 < tails["heterogeneous"]


@pytest.mark.slow  # host data in the engine: test_engine's host_data test runs by default
def test_imagenet_sweep_streams_host_data_under_mock_data(tmp_path):
  """The ImageNet path end to end: host-decoded chunks, JAX random-resized crop, evaluation."""
  for preset in imagenet.PRESETS:
    points = train.sweep_points(imagenet.get_config(preset))
    assert [p["num_workers"] for p in points] == [1] + [64] * 5
  with pytest.raises(ValueError, match="preset='full'"):
    imagenet.get_config("full")
  config = imagenet.get_config("short")
  config.update(dict(model="cnn", stored_size=20, image_size=16, batch_size=4,
                     num_workers=(3,), algorithms=("dana_ga",), chunk_steps=2,
                     eval_examples=6, train_eval_examples=6,
                     simulator=dict(execution="blocks"), eval_every_epochs=0.5))
  with tfds.testing.mock_data(num_examples=24):
    summaries = train.run_sweep(config, tmp_path)
  assert [(s["algorithm"], s["num_workers"]) for s in summaries] == [("sgd", 1), ("dana_ga", 3)]
  rows = plot.load_metrics(tmp_path / "dana_ga_N3")
  assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]  # 6 steps an epoch, chunks of 2
  evaluated = [r["step"] for r in rows if np.isfinite(r["test/error"])]  # NaN: not evaluated
  assert evaluated == [4, 6, 10, 12]  # every half epoch (3 steps): first chunk end after
  assert all(0 <= s["final_test_error"][0] <= 1 for s in summaries)


def test_modern_preset_resolves_options_per_n_and_runs_with_the_time_tables(tmp_path):
  import dana_jax as dj
  config = digits.get_config("modern_heterogeneous")
  assert set(config.algorithms) >= {"ringmaster", "msync", "rennala", "async_local_sgd"}
  assert train.options_for(config, "msync", 32) == {"num_gradients": 29}  # round(0.9 · 32)
  assert train.options_for(config, "ringmaster", 8) == {"max_delay": 8}
  assert "learning_rate" not in train.options_for(config, "async_local_sgd", 8)
  alsgd = [p for p in train.sweep_points(config) if p["algorithm"] == "async_local_sgd"]
  assert {p["cells"][0]["learning_rate"] for p in alsgd} == {0.7}  # its own outer η
  spec = lambda a, options: dj.RunSpec.create(a, num_workers=8, batch_size=1, num_examples=64,
                                              algorithm_options=options)
  assert spec("msync", {"num_gradients": 7}).batches_per_step == 7
  assert spec("async_local_sgd", {"local_steps": 4}).batches_per_step == 4
  tiny(config, algorithms=("ringmaster", "msync", "async_local_sgd"), num_workers=(4,),
       seeds=(0,))
  summaries = train.run_sweep(config, tmp_path)
  by_name = {s["algorithm"]: s for s in summaries}
  assert by_name["ringmaster"]["cancelled_jobs"][0] > 0  # R = N = 4, persistent slow workers
  assert by_name["msync"]["algorithm_options"] == {"num_gradients": 4}
  assert all(s["simulated_time"][0] > 0 for s in summaries)
  for s in summaries:  # docs/spec.md §8.5, per seed
    cost = s["cost"][0]
    assert set(cost) == set(dj.cost.COST_FIELDS)
    assert cost["elapsed"] == pytest.approx(s["simulated_time"][0])
    parts = cost["computing"] + cost["communicating"] + cost["idle"] + cost["lost"]
    assert parts == pytest.approx(cost["worker_time"], rel=1e-9)
    assert 0 < cost["goodput"] <= 1
  assert by_name["ringmaster"]["cost"][0]["lost"] > 0  # its cancelled jobs' time
  plot.main(tmp_path)
  text = (tmp_path / "results.md").read_text()
  assert "## Final test error (%)" in text  # a main sweep, though η differs per algorithm
  assert "Simulated time to the target error" in text and "Cancelled or discarded" in text
  assert "What the runs cost" in text and "Worker-time to the target error" in text


def test_per_worker_data_logs_each_workers_train_error_and_reports_it(tmp_path):
  import ml_collections
  config = tiny(digits.get_config("modern_heterogeneous"), algorithms=("asgd", "ga"),
                num_workers=(4,), seeds=(0, 1))
  config.environment.placement = ml_collections.ConfigDict({"name": "dirichlet",
                                                            "alpha": 0.5})
  summaries = train.run_sweep(config, tmp_path)
  for s in summaries:
    n = s["num_workers"]
    for errors, applied in zip(s["final_train_error_by_worker"], s["applied_by_worker"],
                               strict=True):
      assert len(errors) == n and all(0 <= e <= 1 for e in errors)
      assert sum(applied) == s["steps"]  # one gradient per master step
  plot.main(tmp_path)
  text = (tmp_path / "results.md").read_text()
  assert "Train error on each worker's own data" in text and "most-applied quarter" in text


def _run_dir(root, name, algorithm, n, rows):
  """A run directory with only what the plots read: config.json and metrics.jsonl."""
  (root / name).mkdir()
  (root / name / "config.json").write_text(json.dumps({"algorithm": algorithm,
                                                       "num_workers": n}))
  (root / name / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))


def test_time_to_target_reads_the_first_evaluation_at_or_below_it(tmp_path):
  run = functools.partial(_run_dir, tmp_path)
  run("sgd_N1", "sgd", 1, [{"seed": 0, "step": s, "test/error": e, "time/simulated": 1.0}
                           for s, e in [(10, 0.5), (20, 0.2), (30, 0.1)]])
  run("ga_N4", "ga", 4, [{"seed": k, "step": s, "test/error": e, "time/simulated": t}
                         for k in (0, 1) for s, e, t in [(10, 0.3, 100.0), (20, 0.105 + k, 200.0)]])
  summaries = [{"algorithm": "sgd", "num_workers": 1, "final_test_error": [0.1]},
               {"algorithm": "ga", "num_workers": 4, "final_test_error": [0.105, 1.105]}]
  target, times = plot.time_to_target(tmp_path, summaries)
  assert target == pytest.approx(0.11)
  assert times[("sgd", 1)] == [30 * plot.MEAN_BATCH_TIME]  # one worker of average speed
  assert times[("ga", 4)] == [200.0, None]  # seed 1 never reaches it
  assert "not reached (1/2 seeds)" in plot.time_to_target_table(tmp_path, summaries)
  # A seed that diverged before any finite evaluation never reached the target either.
  run("nag_N4", "nag", 4, [{"seed": k, "step": 10, "test/error": e, "time/simulated": 90.0}
                           for k, e in [(0, 0.05), (1, float("nan"))]])
  assert plot.time_to_target(tmp_path, summaries)[1][("nag", 4)] == [90.0, None]
  # A given target (a fraction) replaces the baseline's; the speedup stays over N = 1.
  target, times = plot.time_to_target(tmp_path, summaries, target_error=0.3)
  assert target == 0.3 and times[("ga", 4)] == [100.0, 100.0]
  table = plot.time_to_target_table(tmp_path, summaries, target_error=0.3)
  assert "≤ 30.00% (given)" in table and "| ga | 100 (25.6×) |" in table  # 20·128 / 100
  # Without a baseline: no default target, and the table says how to give one.
  base_free = [s for s in summaries if s["num_workers"] > 1]
  assert "--target-error" in plot.time_to_target_table(tmp_path, base_free)
  table = plot.time_to_target_table(tmp_path, base_free, target_error=0.3)
  assert "no single-worker baseline, so no speedup" in table and "| ga | 100 |" in table


def test_error_against_time_has_one_panel_per_n_with_every_algorithm(tmp_path):
  run = functools.partial(_run_dir, tmp_path)
  run("sgd_N1", "sgd", 1, [{"seed": 0, "step": s, "test/error": e, "time/simulated": 9.0}
                           for s, e in [(10, 0.5), (20, 0.2)]])
  run("ga_N4", "ga", 4, [{"seed": k, "step": s, "test/error": 0.3 + 0.1 * k,
                          "time/simulated": t + k} for k in (0, 1)
                         for s, t in [(10, 100.0), (20, 200.0)]])
  # A diverged seed (NaN) is left out; a row without a time is skipped.
  run("ga_N8", "ga", 8, [{"seed": 0, "step": 10, "test/error": 0.4, "time/simulated": 50.0},
                         {"seed": 1, "step": 10, "test/error": float("nan"),
                          "time/simulated": 60.0},
                         {"seed": 0, "step": 20, "test/error": 0.3}])
  run("ssgd_N4", "ssgd", 4, [{"seed": 0, "step": 10, "test/error": 0.35,
                              "time/simulated": 900.0}])
  fig = plot.plot_error_vs_time(tmp_path, tmp_path / "t")
  assert (tmp_path / "t.png").exists() and (tmp_path / "t.pdf").exists()
  panels = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in panels] == ["N = 4", "N = 8"]
  labels = [[line.get_label() for line in ax.get_lines()] for ax in panels]
  assert labels == [["ga", "ssgd", "sgd (N = 1)"], ["ga", "sgd (N = 1)"]]
  ga4, ssgd4, base = panels[0].get_lines()
  np.testing.assert_allclose(ga4.get_xdata(), [100.5, 200.5])  # time: mean over seeds
  np.testing.assert_allclose(ga4.get_ydata(), [35.0, 35.0])  # error (%): mean over seeds
  np.testing.assert_allclose(base.get_xdata(), [10 * 128.0, 20 * 128.0])  # step × 128
  np.testing.assert_allclose(panels[1].get_lines()[0].get_ydata(), [40.0])
  assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ga", "ssgd", "sgd (N = 1)"]
  assert all(ax.get_xscale() == "log" for ax in panels)
  # A sweep with a single N still draws.
  (tmp_path / "ga_N8" / "metrics.jsonl").unlink()
  (tmp_path / "ga_N8" / "config.json").unlink()
  (tmp_path / "ga_N8").rmdir()
  fig = plot.plot_error_vs_time(tmp_path, tmp_path / "one")
  assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["N = 4"]


def test_plot_help_says_it_redraws_from_the_run_files(tmp_path):
  out = subprocess.run([sys.executable, "-m", "experiments.plot", "--help"],
                       capture_output=True, text=True, check=True).stdout
  assert "from the run files alone" in " ".join(out.split()) and "RESULTS_DIR" in out
  bad = subprocess.run([sys.executable, "-m", "experiments.plot", str(tmp_path / "none")],
                       capture_output=True, text=True)
  assert bad.returncode == 1 and "Traceback" not in bad.stderr
  assert bad.stderr.strip().splitlines() == [
      f"error: RESULTS_DIR={str(tmp_path / 'none')!r} holds no finished runs "
      "(*/summary.json): give the --workdir of a finished sweep."]
  assert "--target-points P" in out and "--target-error E" in out
  bad = subprocess.run([sys.executable, "-m", "experiments.plot", str(tmp_path),
                        "--target-error", "150"], capture_output=True, text=True)
  assert bad.returncode == 1 and "Traceback" not in bad.stderr
  assert bad.stderr.strip().splitlines() == [
      "error: argument --target-error: '150' is not a number of percent in [0, 100] "
      "(python -m experiments.plot --help)"]


def test_environments_are_drawn_side_by_side_on_one_scale(tmp_path):
  for name, timing, error in [("hom", "homogeneous", 0.1), ("het", "heterogeneous", 0.3)]:
    for a, n in [("ga", 4), ("ga", 8), ("sgd", 1)]:
      run = tmp_path / name / f"{a}_N{n}"
      run.mkdir(parents=True)
      # hom as written before config.timing was a group; het as today
      fields = ({"timing": timing, "worker_speed_shape": None} if name == "hom" else
                {"timing": {"name": timing, "worker_speed_shape": 2.0}})
      (run / "config.json").write_text(json.dumps(
          {"algorithm": a, "num_workers": n, **fields}))
      (run / "summary.json").write_text(json.dumps(
          {"algorithm": a, "num_workers": n, "final_test_error": [error * n]}))
  fig = plot.plot_environments([tmp_path / "hom", tmp_path / "het"], tmp_path / "b")
  left, right = fig.axes
  assert left.get_title() == "homogeneous\nhom"
  assert right.get_title() == "heterogeneous, persistent worker speeds (shape 2)\nhet"
  assert left.get_ylim() == right.get_ylim()
  np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [120.0, 240.0])
  assert (tmp_path / "b.png").exists() and (tmp_path / "b.pdf").exists()


def test_algorithm_order_and_colours_follow_the_registry():
  import dana_jax as dj
  assert plot.ordered(reversed(list(dj.ALGORITHMS))) == list(dj.ALGORITHMS)
  assert all(plot.colour(a) == dj.ALGORITHMS[a].colour is not None for a in dj.ALGORITHMS)
  assert plot.ordered(["ssgd", "mine", "dana_ga", "ga"]) == ["ga", "dana_ga", "ssgd", "mine"]
  assert plot.colour("mine", ["mine", "ga"]) == "C0"
  assert plot.colour("yours", ["mine", "yours", "ga"]) == "C1"  # by place, after the registry


def _epoch_rows(n, seeds=(0, 1), epochs=(1, 2), error=0.3, gap=1e-3, lag=None):
  lag = n - 1 if lag is None else lag
  hist = [0] * (2 * n + 1)
  hist[min(lag, 2 * n)] = 10
  return [{"seed": k, "step": 10 * e, "epoch": float(e), "test/error": error + 0.01 * k,
           "gap/rms": gap, "lag/mean": float(lag), "lag/hist": hist, "time/simulated": 5.0 * e}
          for k in seeds for e in epochs]


def test_per_epoch_lag_and_gap_figures_have_one_panel_per_n(tmp_path):
  import dana_jax as dj
  _run_dir(tmp_path, "sgd_N1", "sgd", 1, _epoch_rows(1, seeds=(0,), error=0.2, gap=0.0))
  for n in (4, 8):
    _run_dir(tmp_path, f"dana_ga_N{n}", "dana_ga", n, _epoch_rows(n, gap=1e-4))
    _run_dir(tmp_path, f"ga_N{n}", "ga", n, _epoch_rows(n, gap=1e-2 * n))
  _run_dir(tmp_path, "ringmaster_N8", "ringmaster", 8, _epoch_rows(8, lag=2))
  fig = plot.plot_per_epoch(tmp_path, "test/error", tmp_path / "e", scale=100)
  panels = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in panels] == ["N = 4", "N = 8"]
  assert [line.get_label() for line in panels[1].get_lines()] == [
      "ga", "dana_ga", "ringmaster", "sgd (N = 1)"]  # the fixed order, baseline last
  base = panels[0].get_lines()[-1]
  assert base.get_linestyle() == "--" and base.get_color() == "k"
  assert panels[0].get_lines()[0].get_color() == dj.ALGORITHMS["ga"].colour
  assert len({ax.get_ylim() for ax in panels}) == 1  # one scale
  np.testing.assert_allclose(panels[0].get_lines()[0].get_ydata(), [30.5, 30.5])
  gap = plot.plot_per_epoch(tmp_path, "gap/rms", tmp_path / "g", algorithms=("ga", "dana_ga"),
                            log=True, baseline=False)
  gap_panels = [ax for ax in gap.axes if ax.get_visible()]
  assert [line.get_label() for line in gap_panels[0].get_lines()] == ["ga", "dana_ga"]
  assert len({ax.get_ylim() for ax in gap_panels}) == 1
  assert all(ax.get_yscale() == "log" for ax in gap_panels)
  # The lag: once for GA and DANA-GA (same schedule), apart for Ringmaster's bounded lag.
  lag = plot.plot_lag(tmp_path, tmp_path / "l")
  lag_panels = [ax for ax in lag.axes if ax.get_visible()]
  # Row-major: the lag-against-epoch row, then the histograms.
  assert [ax.get_title() for ax in lag_panels] == ["N = 4", "N = 8", "", ""]
  assert [line.get_label() for line in lag_panels[1].get_lines()] == [
      "ga, dana_ga", "ringmaster"]
  np.testing.assert_allclose(lag_panels[1].get_lines()[0].get_ydata(), [7.0, 7.0])
  histogram = lag_panels[3].get_lines()[0]
  assert histogram.get_ydata()[7] == 1.0 and histogram.get_ydata().sum() == 1.0
  assert lag_panels[0].get_ylim() == lag_panels[1].get_ylim()
  for name in ("e", "g", "l"):
    assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.pdf").exists()


def test_error_against_n_has_ticks_only_at_the_measured_n(tmp_path):
  summaries = [{"algorithm": a, "num_workers": n, "final_test_error": [0.1, 0.2]}
               for a in ("dana_ga", "ga", "ssgd") for n in (4, 32)]
  summaries.append({"algorithm": "sgd", "num_workers": 1, "final_test_error": [0.1]})
  ax = plot.plot_error_vs_workers(summaries, tmp_path / "w").axes[0]
  assert list(ax.get_xticks()) == [4, 32]
  assert [t.get_text() for t in ax.get_legend().get_texts()] == [
      "ga", "dana_ga", "ssgd", "sgd (N = 1)"]
  assert ax.get_lines()[-1].get_linestyle() == "--"
