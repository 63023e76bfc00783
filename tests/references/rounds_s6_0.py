"""docs/spec.md §6.0, synchronous rounds: the mean of G gradients, all at θ_r."""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from tests.references.environment_s1 import data_order_batch, flattened
from tests.references.update_rules_s2 import ReferenceMaster


def round_simulation(model, algorithm, x, y, *, num_rounds, gradients_per_round, batch_size,
                     lr, momentum, weight_decay, seed, params0, state0, bn_momentum=0.9,
                     dtype=np.float32, counts=None):
  """spec §6.0 synchronous rounds: round r applies the mean of G gradients, all at θ_r, on
  batches rG … rG + G − 1 of the stream (statistics folded in that order). ``counts``
  (spec §8.2, rounds shrunk by failures): round r averages only its first counts[r]."""
  flat0, unravel, running, sunravel = flattened(params0, state0)
  master = ReferenceMaster(algorithm, np.asarray(flat0), num_workers=1, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, dtype=dtype)
  for r in range(num_rounds):
    params = unravel(np.asarray(master.theta, flat0.dtype))
    grads = []
    used = gradients_per_round if counts is None else int(counts[r])
    for b in range(r * gradients_per_round, r * gradients_per_round + used):
      idx = data_order_batch(seed, x.shape[0], batch_size, b)
      (_, contrib), g = jax.value_and_grad(model.loss, has_aux=True)(
          params, x[idx], y[idx], jax.random.key(0))
      grads.append(np.asarray(ravel_pytree(g)[0], np.float64))
      if sunravel:
        running = bn_momentum * running + np.asarray(ravel_pytree(contrib)[0], np.float64)
    master.apply(np.mean(grads, axis=0), 0, master.theta, 0)
  state = sunravel(running) if sunravel else {}
  return unravel(master.theta), state
