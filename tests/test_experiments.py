"""Experiment drivers end to end on tiny settings: files written, resume, divergence, figures."""

import json
import subprocess
import sys

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from experiments import plot, train  # noqa: E402
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
               "gap_vs_epoch.png"):
    assert (tmp_path / name).exists(), name


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


def test_grid_sweep_draws_a_heatmap(tmp_path):
  config = tiny(digits.get_config(), sweep="grid", algorithms=("asgd",), num_workers=(4,),
                baseline="", seeds=(0,))
  config.grid_learning_rates = (0.01, 0.1)
  config.grid_momenta = (0.5, -0.5)
  summaries = train.run_sweep(config, tmp_path)
  assert len(summaries) == 4 and all(s["replicas_in_program"] == 4 for s in summaries)
  plot.main(tmp_path)
  assert (tmp_path / "grid_heatmap.png").exists()
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
    train.make_model(config, (28, 28, 1), 10)


def test_speedup_entry_point(tmp_path):
  out = subprocess.run([sys.executable, "-m", "experiments.speedup", f"--workdir={tmp_path}",
                        "--runs=2", "--iterations=4000", "--workers=1,4,16"],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads((tmp_path / "speedup.json").read_text())
  assert abs(result["ssgd"][1] - 3.62) < 0.05
  for name in ("speedup.png", "gamma_densities.png", "speedup.md"):
    assert (tmp_path / name).exists()
  tails = {m["name"]: m["tail"] for m in json.loads(
      (tmp_path / "densities.json").read_text())["models"]}
  assert tails["homogeneous"] < 0.02 < tails["heterogeneous"]


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
                     eval_examples=6, train_eval_examples=6, execution="blocks",
                     eval_every_epochs=0.5))
  with tfds.testing.mock_data(num_examples=24):
    summaries = train.run_sweep(config, tmp_path)
  assert [(s["algorithm"], s["num_workers"]) for s in summaries] == [("sgd", 1), ("dana_ga", 3)]
  rows = plot.load_metrics(tmp_path / "dana_ga_N3")
  assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]  # 6 steps an epoch, chunks of 2
  evaluated = [r["step"] for r in rows if "test/error" in r]
  assert evaluated == [4, 6, 10, 12]  # every half epoch (3 steps): first chunk end after
  assert all(0 <= s["final_test_error"][0] <= 1 for s in summaries)


def test_modern_preset_resolves_options_per_n_and_runs_with_the_time_tables(tmp_path):
  config = digits.get_config("modern_heterogeneous")
  assert set(config.algorithms) >= {"ringmaster", "msync", "rennala", "async_local_sgd"}
  assert train.options_for(config, "msync", 32) == {"num_gradients": 29}  # round(0.9 · 32)
  assert train.options_for(config, "ringmaster", 8) == {"max_delay": 8}
  assert "learning_rate" not in train.options_for(config, "async_local_sgd", 8)
  alsgd = [p for p in train.sweep_points(config) if p["algorithm"] == "async_local_sgd"]
  assert {p["cells"][0]["learning_rate"] for p in alsgd} == {0.7}  # its own outer η
  assert train.batches_per_step("msync", 8, {"num_gradients": 7}) == 7
  assert train.batches_per_step("async_local_sgd", 8, {"local_steps": 4}) == 4
  tiny(config, algorithms=("ringmaster", "msync", "async_local_sgd"), num_workers=(4,),
       seeds=(0,))
  summaries = train.run_sweep(config, tmp_path)
  by_name = {s["algorithm"]: s for s in summaries}
  assert by_name["ringmaster"]["cancelled_jobs"][0] > 0  # R = N = 4, persistent slow workers
  assert by_name["msync"]["algorithm_options"] == {"num_gradients": 4}
  assert all(s["simulated_time"][0] > 0 for s in summaries)
  plot.main(tmp_path)
  text = (tmp_path / "results.md").read_text()
  assert "## Final test error (%)" in text  # a main sweep, though η differs per algorithm
  assert "Simulated time to the target error" in text and "Cancelled or discarded" in text


def test_time_to_target_reads_the_first_evaluation_at_or_below_it(tmp_path):
  def run(name, algorithm, n, rows):
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(
        {"algorithm": algorithm, "num_workers": n}))
    (tmp_path / name / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))

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
