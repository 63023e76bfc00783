"""Per-step metrics are declared once (dana_jax.engine.metrics.METRICS): a metric added
there is computed by every execution and appears in every chunk record."""

import jax.numpy as jnp
import pytest

import dana_jax as dj
from dana_jax import data, models
from dana_jax.engine import metrics

MLP = models.flax_model(models.MLP((8,)), (8, 8))


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
