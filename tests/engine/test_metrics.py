"""Per-step metrics are declared once (dana_jax.engine.metrics.METRICS): a metric added
there is computed by every execution and appears in every chunk record."""

import jax.numpy as jnp
import numpy as np
import pytest

import dana_jax as dj
from dana_jax import data, models
from dana_jax.engine import metrics

MLP = dj.flax_model(models.MLP((8,)), (8, 8))


def test_the_declared_metrics_are_the_summary_entries():
  names = dj.metric_names()
  for name in ("loss/train", "learning_rate", "lag/mean", "lag/max", "lag/hist", "gap/rms",
               "gap/normalized", "penalty/mean", "time/simulated", "jobs/cancelled"):
    assert name in names
  assert dj.METRICS is metrics.METRICS


@pytest.mark.parametrize("algorithm", ["ga", "ssgd"])
def test_a_toy_metric_declared_in_one_place_appears_in_every_record(monkeypatch, algorithm):
  # The step count t, its value at the chunk's last step: 4 then 9 for chunks of 5 steps.
  toy = metrics.Metric("toy/step", lambda event: event.step.astype(jnp.float32), metrics.last)
  monkeypatch.setattr(metrics, "METRICS", metrics.METRICS + (toy,))
  assert "toy/step" in dj.metric_names()
  x, y, _, _ = data.digits()
  sim = dj.Simulator(MLP, algorithm, x[:160], y[:160], num_workers=2, batch_size=16)
  result = dj.simulate(sim, 10, chunk_steps=5, progress=False)
  assert [h["replicas"][0]["toy/step"] for h in result.history] == [4.0, 9.0]
  assert "loss/train" in result.history[0]["replicas"][0]


def test_a_toy_metric_reaches_the_run_files_of_an_experiment(monkeypatch, tmp_path):
  """Declared once, the metric is in every metrics.jsonl row and in the run's summary:
  nothing in experiments/ names it."""
  import json

  pytest.importorskip("ml_collections")
  from experiments import plot, train
  from experiments.configs import digits

  toy = metrics.Metric("toy/step", lambda event: event.step.astype(jnp.float32), metrics.last)
  monkeypatch.setattr(metrics, "METRICS", metrics.METRICS + (toy,))
  config = digits.get_config()
  config.update(dict(epochs=2, seeds=(0, 1), batch_size=8, train_eval_examples=16,
                     hidden=(8,), algorithms=("ga",), num_workers=(4,), baseline="",
                     warmup_epochs=0.5, decay_epochs=(1.0,), save_final_params=False,
                     checkpoint_every_epochs=0.0))
  summary, = train.run_sweep(config, tmp_path)
  rows = plot.load_metrics(tmp_path / "ga_N4")
  steps = sorted({r["step"] for r in rows})
  assert len(rows) == 2 * len(steps) and len(steps) == 2
  # The last step of each chunk (an epoch), the metric's own value: t = stop − 1.
  assert [r["toy/step"] for r in rows if r["seed"] == 0] == [s - 1 for s in steps]
  stored = json.loads((tmp_path / "ga_N4" / "summary.json").read_text())
  assert stored["metric_means"]["toy/step"] == [np.mean([s - 1 for s in steps])] * 2
  assert summary["metric_means"]["toy/step"] == stored["metric_means"]["toy/step"]
