"""An independent, obviously-correct reference for spec §1, §2 and §6.

Plain numpy on flat parameter vectors, one worker at a time, following the
equations of docs/spec.md literally. Only the gradient of the model (jax.grad, not
jitted) and the random batch times (drawn from the same timing model) are
shared with the code under test.
"""

from __future__ import annotations

import heapq

import jax
import numpy as np
from jax.flatten_util import ravel_pytree


class ReferenceMaster:
  """The master update rules of spec §2 on flat float64 vectors."""

  def __init__(self, algorithm, theta, *, num_workers, lr, momentum, weight_decay,
               beta=0.999, eps=1e-8, penalty="one_plus", segments=None,
               penalize_weight_decay=True, gap_against="lookahead", dc_lambda=None,
               dc_adaptive=False, dc_decay=0.95, dc_eps=1e-7, dtype=np.float64, base="sgd",
               buffer_size=None, activation=0.0):
    self.alg = algorithm
    self.base = base              # spec §6.6: sgd, adam or adamw
    self.b = buffer_size          # spec §6.5 delayed Nesterov: b, c
    self.c = activation
    p0 = np.asarray(theta).size
    self.adam_m = np.zeros(p0)
    self.adam_v = np.zeros(p0)
    self.adam_count = 0
    self.last_update = np.zeros(p0)  # u = θ_t − θ_(t−1), for GA over an adaptive base
    self.accumulator = np.zeros(p0)
    self.dtype = dtype
    self.theta = np.asarray(theta, dtype).copy()
    self.n = num_workers
    self.lr = lr  # function of the master step t
    self.gamma, self.wd = momentum, weight_decay
    self.beta, self.eps, self.penalty = beta, eps, penalty
    self.segments = segments  # list of (start, stop) for per-tensor GA, else None
    self.penalize_wd = penalize_weight_decay
    self.gap_against = gap_against
    self.dc_adaptive = dc_adaptive
    self.dc_lambda = dc_lambda if dc_lambda is not None else (2.0 if dc_adaptive else 0.04)
    self.dc_decay, self.dc_eps = dc_decay, dc_eps
    p = self.theta.size
    self.v = np.zeros(p, dtype)                   # shared buffer
    self.V = np.zeros((num_workers, p), dtype)    # DANA per-worker buffers
    self.r = np.zeros(p, dtype)
    self.count = 0                         # number of r updates
    self.eta_max = 0.0
    self.ms = np.zeros(p, dtype)
    self.last_worker = 0
    self.t = 0
    self.last_eta = 0.0
    self.last_G = None
    self.last_ratio = None

  @property
  def dana(self):
    return self.alg.startswith("dana")

  def read(self):
    """θ̂ for a worker that reads now, after the last update (spec §2.6)."""
    if self.dana:
      return self.theta - self.last_eta * self.gamma * self.V.sum(0)
    return self.theta.copy()

  def gap(self, stale):
    """Δ of spec §2.4 / §2.8 for an arriving gradient at step t (before the update)."""
    if self.dana and self.gap_against == "lookahead":
      return (self.theta - self.lr(self.t) * self.gamma * self.V.sum(0)) - stale
    return self.theta - stale

  def apply(self, g, tau, stale, k):
    eta = self.dtype(self.lr(self.t))
    g = np.asarray(g, self.dtype)
    stale = np.asarray(stale, self.dtype)
    if self.alg == "dc_asgd":
      lam = self.dc_lambda
      if self.dc_adaptive:
        self.ms = self.dc_decay * self.ms + (1 - self.dc_decay) * g * g
        lam = self.dc_lambda / np.sqrt(self.ms + self.dc_eps)
      g = g + lam * g * g * (self.theta - stale)
    coupled = self.base in ("sgd", "adam")
    wd_term = self.wd * self.theta if coupled else 0.0
    d = g + wd_term if (self.penalize_wd or self.alg not in ("ga", "dana_ga")) else g
    if self.alg in ("sa", "dana_sa"):
      d = d / max(tau, 1)
    if self.alg == "delay_adaptive":  # spec §6.1
      d = d * min(1.0, self.n / max(tau, 1))
    if self.alg == "ga" and self.base != "sgd":  # spec §6.6: C from the applied step
      u = self.last_update
      self.r = self.beta * self.r + (1 - self.beta) * u * u
      self.count += 1
      C = np.sqrt(self.r / (1 - self.beta ** self.count)) + self.eps
      ratio = np.abs(self.theta - stale) / C
      d = d / (1 + ratio if self.penalty == "one_plus" else np.maximum(1.0, ratio))
    elif self.alg in ("ga", "dana_ga"):
      delta = self.gap(stale)
      if self.gamma == 0:
        u = d
      elif self.dana:
        u = self.V[self.last_worker] if self.t > 0 else np.zeros_like(d)
      else:
        u = self.v
      self.r = self.beta * self.r + (1 - self.beta) * u * u
      self.count += 1
      r_hat = self.r / (1 - self.beta ** self.count)
      self.eta_max = max(self.eta_max, eta)
      C = self.eta_max * (np.sqrt(r_hat) + self.eps)
      if self.segments is None:
        ratio = np.abs(delta) / C
      else:
        ratio = np.empty_like(d)
        for a, b in self.segments:
          ratio[a:b] = np.mean(np.abs(delta[a:b])) / np.mean(C[a:b])
      G = 1 + ratio if self.penalty == "one_plus" else np.maximum(1.0, ratio)
      d = d / G
      self.last_G, self.last_ratio = G, ratio
      if not self.penalize_wd:
        d = d + wd_term
    before = self.theta.copy()
    if self.base in ("adam", "adamw"):  # Adam, b1 = γ, b2 = 0.999, ε = 1e-8
      self.adam_count += 1
      self.adam_m = self.gamma * self.adam_m + (1 - self.gamma) * d
      self.adam_v = 0.999 * self.adam_v + 0.001 * d * d
      m_hat = self.adam_m / (1 - self.gamma ** self.adam_count)
      v_hat = self.adam_v / (1 - 0.999 ** self.adam_count)
      step = m_hat / (np.sqrt(v_hat) + 1e-8)
      if self.base == "adamw":  # decoupled weight decay
        step = step + self.wd * self.theta
      self.theta = self.theta - eta * step
    elif self.alg == "delayed_nesterov":  # spec §6.5 DN
      self.accumulator = self.accumulator + d
      b, c = self.b, self.c
      if (self.t + 1) % b == 0:
        self.v = self.gamma * self.v + self.accumulator / b
        self.theta = self.theta - eta * ((1 - c * b + c) * self.gamma * self.v + d / b)
        self.accumulator = np.zeros_like(d)
      else:
        self.theta = self.theta - eta * (c * self.gamma * self.v + d / b)
    elif self.dana:
      self.V[k] = self.gamma * self.V[k] + d
      self.theta = self.theta - eta * self.V[k]
      self.last_worker = k
    elif self.alg in ("sgd", "asgd", "ringmaster", "rennala"):
      self.v = self.gamma * self.v + d
      self.theta = self.theta - eta * self.v
    else:  # nag, sa, ga, dc_asgd, ssgd: v ← γv + d; θ ← θ − η(d + γv)
      self.v = self.gamma * self.v + d
      self.theta = self.theta - eta * (d + self.gamma * self.v)
    self.last_update = self.theta - before
    self.last_eta = eta
    self.t += 1


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
                     bn_momentum=0.9, dtype=np.float64, **options):
  """Heap-driven simulation of spec §1, one worker at a time.

  Returns (theta, model_state, list of lags, list of workers).
  """
  flat0, unravel, running, sunravel = flattened(params0, state0)
  master = ReferenceMaster(algorithm, np.asarray(flat0), num_workers=num_workers, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, dtype=dtype,
                           **options)

  def gradient(theta_hat, dispatch):
    idx = data_order_batch(seed, x.shape[0], batch_size, dispatch)
    params = unravel(np.asarray(theta_hat, flat0.dtype))
    key = jax.random.key(0)
    (loss, contrib), g = jax.value_and_grad(model.loss, has_aux=True)(params, x[idx], y[idx],
                                                                        key)
    c = np.asarray(ravel_pytree(contrib)[0], np.float64) if sunravel else np.zeros(0)
    return np.asarray(ravel_pytree(g)[0], np.float64), c

  theta_hat = [master.read() for _ in range(num_workers)]
  read_step = [0] * num_workers
  pending = [gradient(theta_hat[i], i) for i in range(num_workers)]
  heap = [(batch_times[i, 0], i, 0) for i in range(num_workers)]
  heapq.heapify(heap)
  lags, workers = [], []
  for t in range(num_steps):
    done, k, j = heapq.heappop(heap)
    tau = t - read_step[k]
    g, c = pending[k]
    master.apply(g, tau, theta_hat[k], k)
    running = bn_momentum * running + c
    theta_hat[k] = master.read()
    read_step[k] = t + 1
    pending[k] = gradient(theta_hat[k], num_workers + t)
    heapq.heappush(heap, (done + batch_times[k, j + 1], k, j + 1))
    lags.append(tau)
    workers.append(k)
  state = sunravel(running) if sunravel else {}
  return unravel(master.theta), state, lags, workers


def event_simulation_v2(model, algorithm, x, y, *, batch_times, num_steps, num_workers,
                        batch_size, lr, momentum, weight_decay, seed, params0, state0,
                        bn_momentum=0.9, dtype=np.float32, restart_rule=None,
                        local_steps=1, inner_lr=None, inner_momentum=0.0, inner="sgd",
                        inner_weight_decay=0.0, discard_at=None, worker_local_steps=None,
                        **options):
  """spec §6.0 (restart events) and §6.5's workers (H local steps), one event at a time.

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


def round_simulation(model, algorithm, x, y, *, num_rounds, gradients_per_round, batch_size,
                     lr, momentum, weight_decay, seed, params0, state0, bn_momentum=0.9,
                     dtype=np.float32):
  """spec §6.0 synchronous rounds: round r applies the mean of G gradients, all at θ_r, on
  batches rG … rG + G − 1 of the stream (statistics folded in that order)."""
  flat0, unravel, running, sunravel = flattened(params0, state0)
  master = ReferenceMaster(algorithm, np.asarray(flat0), num_workers=1, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, dtype=dtype)
  for r in range(num_rounds):
    params = unravel(np.asarray(master.theta, flat0.dtype))
    grads = []
    for b in range(r * gradients_per_round, (r + 1) * gradients_per_round):
      idx = data_order_batch(seed, x.shape[0], batch_size, b)
      (_, contrib), g = jax.value_and_grad(model.loss, has_aux=True)(
          params, x[idx], y[idx], jax.random.key(0))
      grads.append(np.asarray(ravel_pytree(g)[0], np.float64))
      if sunravel:
        running = bn_momentum * running + np.asarray(ravel_pytree(contrib)[0], np.float64)
    master.apply(np.mean(grads, axis=0), 0, master.theta, 0)
  state = sunravel(running) if sunravel else {}
  return unravel(master.theta), state


def rennala_round_times(batch_times, num_rounds, num_gradients):
  """docs/spec.md §6.4 literally: in round r each worker runs jobs back to back from T_r on its
  next draws; completions are taken in (time, worker id) order until S have come, and
  T_(r+1) is the S-th. The worker whose completion ends the round has nothing in flight:
  no job of it is cancelled, and its next draw serves the next round; every other
  worker's in-flight job is cancelled (its draw spent) and it starts round r + 1 with its
  next draw. A job is in flight when it started before T_(r+1): a worker whose counted
  completion ties with T_(r+1) has nothing in flight either (its next job would start at
  T_(r+1)), so that draw also serves the next round.

  Returns (the rounds' end times T_(r+1), jobs cancelled per round, draws spent per
  worker). A trace may hold just the draws spent: a draw past its end reads +inf.
  """
  n, rows = batch_times.shape
  nxt = [0] * n  # each worker's next draw

  def draw(i):
    x = batch_times[i, nxt[i]] if nxt[i] < rows else np.inf
    nxt[i] += 1
    return x

  start, ends, cancelled = 0.0, [], []
  for _ in range(num_rounds):
    heap = [(start + draw(i), start, i) for i in range(n)]  # (completion, job start, worker)
    heapq.heapify(heap)
    for _ in range(num_gradients):
      done, _, i = heapq.heappop(heap)
      heapq.heappush(heap, (done + draw(i), done, i))  # i's next job starts at once
    end = done
    count = 0
    for _, began, i in heap:  # every worker has one job left in the heap
      if began < end:
        count += 1  # in flight: cancelled, its draw spent
      else:
        nxt[i] -= 1  # not started: the draw serves the next round
    start = end
    ends.append(end)
    cancelled.append(count)
  return np.asarray(ends), np.asarray(cancelled), np.asarray(nxt)
