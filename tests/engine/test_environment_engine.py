"""docs/spec.md §8 in the engine: rounds shrunk by failures (a masked mean), failures and
rejoins as no-ops and restarts, against the literal references (tests/references/)."""

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import data, models
from dana_jax.environment import Environment
from tests.references.rounds_s6_0 import round_simulation
from tests.schedule.test_environment_rounds import FixedDown

MLP = dj.flax_model(models.MLP((16,)), (8, 8))


def digits_subset(n=320):
  x, y, _, _ = data.digits()
  return x[:n], y[:n]


@pytest.mark.parametrize("wait", [False, True])
def test_ssgd_rounds_shrunk_by_failures_match_the_reference(wait):
  x, y = digits_subset()
  down = FixedDown([[], [(100.0, 700.0)], [(300.0, 350.0), (900.0, 1000.0)]],
                   wait_for_all=wait)
  env = Environment(compute=dj.heterogeneous(), availability=down)
  sim = dj.Simulator(MLP, "ssgd", x, y, num_workers=3, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), environment=env)
  result = dj.simulate(sim, 10, chunk_steps=5, progress=False)
  rounds = result.schedules[0]
  counts = np.full(10, 3) if rounds.gradients is None else rounds.gradients[:10]
  assert wait or counts.min() < 3  # some round shrank
  params0, state0 = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  theta, _ = round_simulation(MLP, "ssgd", x, y, num_rounds=10, gradients_per_round=3,
                              batch_size=16, lr=lambda t: 0.05, momentum=0.9,
                              weight_decay=1e-3, seed=0, params0=params0, state0=state0,
                              counts=counts)
  np.testing.assert_allclose(np.asarray(ravel_pytree(result.state.params)[0]),
                             np.asarray(ravel_pytree(theta)[0]), rtol=2e-4, atol=2e-5)
