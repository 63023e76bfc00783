"""docs/spec.md §8.2's training, given the events: what the master and the workers compute
along an event list (the literal §8 reference's, tests/references/environment_s8.py).

One event at a time: an APPLY of worker k computes k's job on the parameters θ̂_k it read
(one gradient, or H inner AdamW steps for local SGD, on batches dH … dH + H − 1 of the
§1 stream, d the event's dispatch), the master applies it with lag τ, and k reads again;
a DISCARD only rereads; a RESTART or REJOIN rereads (REJOIN, with ``reset_on_rejoin``,
also zeroes k's inner state); a FAIL changes nothing.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from tests.references.environment_s1 import data_order_batch, flattened
from tests.references.update_rules_s2 import ReferenceMaster

APPLY, RESTART, NOOP, DISCARD, FAIL, REJOIN = 0, 1, 2, 3, 4, 5


def replay_training(model, algorithm, x, y, events, *, num_workers, batch_size, lr, momentum,
                    weight_decay, seed, params0, state0, bn_momentum=0.9, dtype=np.float32,
                    local_steps=1, inner_lr=None, inner_weight_decay=0.0,
                    reset_on_rejoin=False, batch_examples=None, **options):
  """θ and the running statistics after ``events`` [(kind, worker, time, dispatch, step,
  lag)] (module docstring). ``batch_examples(dispatch, j)``: the example indices of the
  j-th batch of dispatch d's job (per-worker data, §8.4); default §1's stream batch
  d·H + j."""
  flat0, unravel, running, sunravel = flattened(params0, state0)
  master = ReferenceMaster(algorithm, np.asarray(flat0), num_workers=num_workers, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, dtype=dtype,
                           **options)
  fresh = lambda: (np.zeros(flat0.size), np.zeros(flat0.size), 0)
  adam = [fresh() for _ in range(num_workers)]

  def gradient(theta, dispatch, j):
    idx = (data_order_batch(seed, x.shape[0], batch_size, dispatch * local_steps + j)
           if batch_examples is None else np.asarray(batch_examples(dispatch, j)))
    params = unravel(np.asarray(theta, flat0.dtype))
    (_, contrib), g = jax.value_and_grad(model.loss, has_aux=True)(params, x[idx], y[idx],
                                                                     jax.random.key(0))
    c = np.asarray(ravel_pytree(contrib)[0], np.float64) if sunravel else np.zeros(0)
    return np.asarray(ravel_pytree(g)[0], np.float64), c

  def job(k, theta_hat, dispatch):
    if inner_lr is None:
      g, c = gradient(theta_hat, dispatch, 0)
      return g, [c]
    theta, contribs = np.array(theta_hat, np.float64), []
    m, v, n = adam[k]
    for j in range(local_steps):
      g, c = gradient(theta, dispatch, j)
      n += 1
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g * g
      step = (m / (1 - 0.9 ** n)) / (np.sqrt(v / (1 - 0.999 ** n)) + 1e-8)
      theta = theta - inner_lr * (step + inner_weight_decay * theta)
      contribs.append(c)
    adam[k] = (m, v, n)
    return theta_hat - theta, contribs

  theta_hat = [master.read() for _ in range(num_workers)]
  for kind, k, _, dispatch, _, lag in events:
    if kind == APPLY:
      g, contribs = job(k, theta_hat[k], dispatch)
      master.apply(g, lag, theta_hat[k], k)
      for c in contribs:
        running = bn_momentum * running + c
      theta_hat[k] = master.read()
    elif kind in (RESTART, DISCARD, REJOIN):
      theta_hat[k] = master.read()
      if kind == REJOIN and reset_on_rejoin:
        adam[k] = fresh()
  state = sunravel(running) if sunravel else {}
  return unravel(master.theta), state
