"""Evaluation of every replica in one compiled call per batch, equal to one at a time."""

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import data, models
from dana_jax.engine import loop


@pytest.mark.parametrize("replica_execution", ["vmap", "loop"])
def test_replicas_are_evaluated_together_and_equal_one_at_a_time(monkeypatch, replica_execution):
  x, y, tx, ty = data.digits()
  model = dj.flax_model(models.SmallCNN(channels=(4,), hidden=8), (8, 8))
  sim = dj.Simulator(model, "dana_ga", x, y, num_workers=4, batch_size=32, seeds=[0, 1, 2])
  state = dj.simulate(sim, 30, progress=False).state
  calls = []
  real = loop._evaluation_fn

  def counted(model, replicated, *how):
    fn = real(model, replicated, *how)
    return lambda *args: calls.append(replicated) or fn(*args)

  monkeypatch.setattr(loop, "_evaluation_fn", counted)
  together = dj.engine.evaluate_replicas(model, state.params, state.model_state, tx, ty,
                                         batch_size=100, replica_execution=replica_execution)
  assert calls == [True] * 3  # 300 test examples, batches of 100: one call per batch
  for r in range(3):
    one = dj.replica(state, r)
    alone = dj.evaluate(model, one.params, one.model_state, tx, ty, batch_size=100)
    assert together[r] == alone, (r, together[r], alone)
    logits = model.predict(one.params, one.model_state, tx)
    np.testing.assert_allclose(alone["error"], np.mean(np.argmax(logits, -1) != ty))
  assert len({together[r]["loss"] for r in range(3)}) == 3  # the replicas differ
