"""docs/spec.md §1, the asynchronous environment: the data stream and the events.

One simulation, one event at a time: §1's workers each hold one job; the
earliest completion is applied. §6.0's restart events, §6.2's discards and §6.5's
local-step workers change only what happens at an event or what a job computes,
so they are options of the same loop (all off by default: §1 exactly).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from tests.references.update_rules_s2 import ReferenceMaster


def data_order_batch(seed, num_examples, batch_size, dispatch):
  """spec §1 data stream: epoch = fresh seeded permutation, batches of exactly B."""
  per_epoch = num_examples // batch_size
  epoch, pos = divmod(dispatch, per_epoch)
  perm = np.random.default_rng([seed, 0xDA7A, epoch]).permutation(num_examples)
  return perm[pos * batch_size:(pos + 1) * batch_size]


def flattened(params0, state0):
  """θ_0 as a flat vector, its unravel, the running statistics (float64) and theirs."""
  flat0, unravel = ravel_pytree(params0)
  if not jax.tree_util.tree_leaves(state0):
    return flat0, unravel, np.zeros(0), None
  sflat0, sunravel = ravel_pytree(state0)
  return flat0, unravel, np.asarray(sflat0, np.float64).copy(), sunravel


def event_simulation(model, algorithm, x, y, *, batch_times, num_steps, num_workers,
                     batch_size, lr, momentum, weight_decay, seed, params0, state0,
                     bn_momentum=0.9, dtype=np.float32, restart_rule=None,
                     local_steps=1, inner_lr=None, inner_momentum=0.0, inner="sgd",
                     inner_weight_decay=0.0, discard_at=None, worker_local_steps=None,
                     **options):
  """docs/spec.md §1's events, one at a time, with §6.0's restarts and §6.5's workers.

  Literal: a list of in-flight jobs (worker, completion time, dispatch); the earliest
  completion (ties: lower id) is applied; then every worker ``restart_rule(t + 1, r)``
  marks has its job cancelled, reads again, and starts a new job with the same
  dispatch at the current time with its next batch-time draws. A job of H local steps
  takes the sum of H draws and runs H steps of SGD with momentum (``inner_lr``,
  ``inner_momentum``, plain numpy; the buffer persists per worker) on batches
  dH … dH + H − 1 of the stream, sending θ̂ − θ^(H); ``inner="adamw"``: AdamW
  (b1 0.9, b2 0.999, ε 1e-8, decoupled ``inner_weight_decay``) instead, its
  moments and count persisting per worker. With ``local_steps=1`` and
  ``inner_lr=None`` the job is one gradient. ``discard_at`` = R (spec §6.2,
  Ringmaster without cancellation): an arriving gradient with τ ≥ R is
  dropped; the worker reads again and starts a job on the next batch.
  ``worker_local_steps`` = [H_0, …] (DyLU, spec §6.5): worker k's job runs H_k ≤ H
  steps on the next H_k batches of the stream (dispatches take batches in the order
  they are made) and takes the worker's next H_k draws (its j-th job: draws
  jH_k … jH_k + H_k − 1 of its trace row; rows are consumed in order, none skipped).

  Returns (theta, model_state, list of events (kind, worker, lag, time)).
  """
  flat0, unravel, running, sunravel = flattened(params0, state0)
  master = ReferenceMaster(algorithm, np.asarray(flat0), num_workers=num_workers, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, dtype=dtype,
                           **options)
  inner_buffer = [np.zeros(flat0.size) for _ in range(num_workers)]
  adam_state = [(np.zeros(flat0.size), np.zeros(flat0.size), 0) for _ in range(num_workers)]

  def gradient(theta, batch):
    idx = data_order_batch(seed, x.shape[0], batch_size, batch)
    params = unravel(np.asarray(theta, flat0.dtype))
    (_, contrib), g = jax.value_and_grad(model.loss, has_aux=True)(params, x[idx], y[idx],
                                                                     jax.random.key(0))
    c = np.asarray(ravel_pytree(contrib)[0], np.float64) if sunravel else np.zeros(0)
    return np.asarray(ravel_pytree(g)[0], np.float64), c

  steps_of = [local_steps] * num_workers if worker_local_steps is None else [
      int(h) for h in worker_local_steps]
  first_batch = {}  # dispatch number -> its first batch of the stream
  stream_position = 0

  def make_dispatch(k, number):
    nonlocal stream_position
    first_batch[number] = stream_position
    stream_position += steps_of[k]
    return number

  def job(k, theta_hat, dispatch):
    """What worker k sends for its job, its statistics contributions, its new buffer."""
    if inner_lr is None:
      g, c = gradient(theta_hat, first_batch[dispatch])
      return g, [c], inner_buffer[k]
    theta, buf, contribs = np.array(theta_hat, np.float64), inner_buffer[k].copy(), []
    m, v, n = adam_state[k]
    for j in range(steps_of[k]):
      g, c = gradient(theta, first_batch[dispatch] + j)
      if inner == "adamw":
        n += 1
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = (m / (1 - 0.9 ** n)) / (np.sqrt(v / (1 - 0.999 ** n)) + 1e-8)
        theta = theta - inner_lr * (step + inner_weight_decay * theta)
      else:
        buf = inner_momentum * buf + g
        theta = theta - inner_lr * buf
      contribs.append(c)
    adam_state[k] = (m, v, n)
    return theta_hat - theta, contribs, buf

  draws = [list(batch_times[i]) for i in range(num_workers)]

  def duration(k):
    return sum(draws[k].pop(0) for _ in range(steps_of[k]))  # the worker's next H_k draws

  theta_hat = [master.read() for _ in range(num_workers)]
  read_step = [0] * num_workers
  dispatch = [make_dispatch(k, k) for k in range(num_workers)]
  done = [duration(i) for i in range(num_workers)]
  events = []
  next_batch = num_workers  # the next dispatch number of the stream
  t = 0
  while t < num_steps:
    k = min(range(num_workers), key=lambda i: (done[i], i))
    now = done[k]
    tau = t - read_step[k]
    if discard_at is not None and tau >= discard_at:
      theta_hat[k], read_step[k], dispatch[k] = master.read(), t, make_dispatch(k, next_batch)
      next_batch += 1
      done[k] = now + duration(k)
      events.append(("discard", k, tau, now))
      continue
    g, contribs, inner_buffer[k] = job(k, theta_hat[k], dispatch[k])
    master.apply(g, tau, theta_hat[k], k)
    for c in contribs:
      running = bn_momentum * running + c
    theta_hat[k], read_step[k] = master.read(), t + 1
    dispatch[k] = make_dispatch(k, next_batch)
    next_batch += 1
    done[k] = now + duration(k)
    events.append(("apply", k, tau, now))
    if restart_rule is not None:
      marked = np.asarray(restart_rule(t + 1, np.array(read_step)))
      for j in np.flatnonzero(marked):
        theta_hat[j], read_step[j] = master.read(), t + 1
        done[j] = now + duration(j)
        events.append(("restart", int(j), 0, now))
    t += 1
  state = sunravel(running) if sunravel else {}
  return unravel(master.theta), state, events


def lags_and_workers(events):
  """The applied events' lags τ and workers, in order (what §1's schedule records)."""
  applied = [(tau, k) for kind, k, tau, _ in events if kind == "apply"]
  return [tau for tau, _ in applied], [k for _, k in applied]
