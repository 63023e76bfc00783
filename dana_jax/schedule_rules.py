"""The schedule rules of the methods after the GA paper (SPEC §6.2–6.4).

What these methods change is not the update but *which* gradients the master
applies when: they are rules of the training-independent schedule
(:mod:`dana_jax.schedule`), computed up front in numpy like the rest of it.

* :class:`RestartAtDelay`: Ringmaster ASGD's cancellation — after every
  master step t, each worker whose job has reached delay t + 1 − r_k ≥ R is
  restarted (a restart event, SPEC §6.0), so no applied gradient is R steps
  stale.
* :class:`DiscardAtDelay`: Ringmaster without cancellation — a gradient that
  arrives with τ ≥ R is discarded; the worker reads again.
* :class:`FastestRule`: m-synchronous SGD — each round the m fastest of N
  one-gradient jobs; the round ends at the m-th completion.
* :class:`RennalaRule`: Rennala SGD — each round every worker runs jobs back
  to back; the first S completions over all workers are the round's
  gradients; the round ends at the S-th.

References:
  Maranjyan, Tyurin, Richtárik, "Ringmaster ASGD: The First Asynchronous SGD
  with Optimal Time Complexity", ICML 2025 (arXiv:2501.16168).
  Chen, Pan, Monga, Bengio, Jozefowicz, "Revisiting Distributed Synchronous
  SGD", 2016 (arXiv:1604.00981).
  Tyurin, Richtárik, "Optimal Time Complexities of Parallel Stochastic
  Optimization Methods Under a Fixed Computation Model", NeurIPS 2023
  (arXiv:2305.12387).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require


def _check_count(field, value, at_most=None, meaning=""):
  _require(value is not None, field, value, f"it is required ({meaning}), no default")
  _require(is_int(value, 1), field, value, f"need an integer ≥ 1 ({meaning})")
  if at_most is not None:
    _require(value <= at_most, field, value,
             f"must be at most num_workers = {at_most} ({meaning})")


@dataclasses.dataclass(frozen=True)
class RestartAtDelay:
  """Restart every worker whose job has reached delay ``max_delay`` (SPEC §6.2).

  A :data:`dana_jax.schedule.RestartRule`: called after each apply event with
  the step count t + 1 and every worker's read step r_k.
  """

  max_delay: int

  def __post_init__(self):
    _check_count("algorithm_options.max_delay", self.max_delay,
                 meaning="R, the delay at which a job is cancelled")

  def __call__(self, step_count: int, read_step: np.ndarray) -> np.ndarray:
    return step_count - np.asarray(read_step) >= self.max_delay


@dataclasses.dataclass(frozen=True)
class DiscardAtDelay:
  """Discard an arriving gradient of delay τ ≥ ``max_delay`` (SPEC §6.2, ``cancel=False``)."""

  max_delay: int

  def __post_init__(self):
    _check_count("algorithm_options.max_delay", self.max_delay,
                 meaning="R, the delay from which a gradient is discarded")

  def __call__(self, lag: int) -> bool:
    return lag >= self.max_delay


@dataclasses.dataclass(frozen=True)
class FastestRule:
  """m-synchronous rounds (SPEC §6.3): one draw X_i per worker and round; the round's
  G = m gradients are the m earliest (ties: lower id); it lasts the m-th smallest X_i."""

  num_gradients: int
  num_workers: int

  def __post_init__(self):
    _check_count("algorithm_options.num_gradients", self.num_gradients, self.num_workers,
                 "m, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def durations(self, timing, streams, num_workers: int, num_rounds: int) -> np.ndarray:
    draws = timing.draw(streams, 0, num_rounds)  # [N, rounds]
    return np.sort(draws, axis=0)[self.num_gradients - 1]

  def cancelled_per_round(self, num_workers: int) -> int:
    return num_workers - self.num_gradients  # the N − m backup workers' jobs


@dataclasses.dataclass(frozen=True)
class RennalaRule:
  """Rennala rounds (SPEC §6.4): from the round's start every worker runs jobs back to
  back on its next draws; the first S completions (ties: time, then lower id) are the
  round's G = S gradients, all at θ_r; the round lasts until the S-th. The job each
  worker has in flight then is cancelled (its draw is spent)."""

  num_gradients: int

  def __post_init__(self):
    _check_count("algorithm_options.num_gradients", self.num_gradients,
                 meaning="S, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def durations(self, timing, streams, num_workers: int, num_rounds: int) -> np.ndarray:
    s = self.num_gradients
    draws = timing.draw(streams, 0, max(16, 2 * num_rounds * (s // num_workers + 2)))
    used = np.zeros(num_workers, np.int64)  # draws spent by each worker so far
    out = np.empty(num_rounds)
    ids = np.repeat(np.arange(num_workers), s)
    for r in range(num_rounds):
      while used.max() + s + 1 > draws.shape[1]:
        draws = np.concatenate([draws, timing.draw(streams, draws.shape[1],
                                                   draws.shape[1])], axis=1)
      # Worker i's first s completions from the round's start (at most s can count).
      window = draws[np.arange(num_workers)[:, None], used[:, None] + np.arange(s)]
      times = np.cumsum(window, axis=1).ravel()
      first = np.lexsort((ids, times))[:s]
      out[r] = times[first[-1]]
      # Each worker spends its completed jobs' draws and the cancelled one in flight.
      used += np.bincount(ids[first], minlength=num_workers) + 1
    return out

  def cancelled_per_round(self, num_workers: int) -> int:
    return num_workers  # every worker has a job in flight at the S-th completion
