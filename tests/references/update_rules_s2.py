"""docs/spec.md §2, the master update rules, on flat float64 vectors.

Also the variants §6 adds to them: delay-adaptive steps (§6.1), the delayed-Nesterov
outer rule (§6.5) and the adaptive bases (§6.6).
"""

from __future__ import annotations

import numpy as np


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
