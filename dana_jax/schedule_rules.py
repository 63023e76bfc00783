"""The schedule rules of the methods after the GA paper (spec §6.2–6.4).

What these methods change is not the update but *which* gradients the master
applies when: they are rules of the training-independent schedule
(:mod:`dana_jax.schedule`), computed up front in numpy like the rest of it.

* :class:`RestartAtDelay`: Ringmaster ASGD's cancellation — after every
  master step t, each worker whose job has reached delay t + 1 − r_k ≥ R is
  restarted (a restart event, spec §6.0), so no applied gradient is R steps
  stale.
* :class:`DiscardAtDelay`: Ringmaster without cancellation — a gradient that
  arrives with τ ≥ R is discarded; the worker reads again.
* :class:`FastestRule`: m-synchronous SGD — each round the m fastest of N
  one-gradient jobs; the round ends at the m-th completion.
* :class:`RennalaRule`: Rennala SGD — each round every worker runs jobs back
  to back; the first S completions over all workers are the round's
  gradients; the round ends at the S-th; the jobs then in flight are cancelled.

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
from dana_jax.schedule import RoundTimes, one_draw_per_round


def _check_count(field, value, at_most=None, meaning=""):
  _require(value is not None, field, value, f"it is required ({meaning}), no default")
  _require(is_int(value, 1), field, value, f"need an integer ≥ 1 ({meaning})")
  if at_most is not None:
    _require(value <= at_most, field, value,
             f"must be at most num_workers = {at_most} ({meaning})")


@dataclasses.dataclass(frozen=True)
class RestartAtDelay:
  """Restart every worker whose job has reached delay ``max_delay`` (spec §6.2).

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
  """Discard an arriving gradient of delay τ ≥ ``max_delay`` (spec §6.2, ``cancel=False``)."""

  max_delay: int

  def __post_init__(self):
    _check_count("algorithm_options.max_delay", self.max_delay,
                 meaning="R, the delay from which a gradient is discarded")

  def __call__(self, lag: int) -> bool:
    return lag >= self.max_delay


@dataclasses.dataclass(frozen=True)
class FastestRule:
  """m-synchronous rounds (spec §6.3): one draw X_i per worker and round; the round's
  G = m gradients are the m earliest (ties: lower id); it lasts the m-th smallest X_i."""

  num_gradients: int
  num_workers: int

  def __post_init__(self):
    _check_count("algorithm_options.num_gradients", self.num_gradients, self.num_workers,
                 "m, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def round_times(self, draws, num_workers: int, num_rounds: int):
    values = one_draw_per_round(draws, num_rounds)  # [N, rounds]
    # The N − m backup workers' jobs are in flight at the m-th completion: cancelled.
    return RoundTimes(np.sort(values, axis=0)[self.num_gradients - 1],
                      np.full(num_rounds, num_workers - self.num_gradients, np.int64),
                      np.full(num_workers, num_rounds, np.int64))


@dataclasses.dataclass(frozen=True)
class RennalaRule:
  """Rennala rounds (docs/spec.md §6.4): from the round's start T_r every worker runs jobs back to
  back on its next draws; the first S completions (ties: time, then lower id) are the
  round's G = S gradients, all at θ_r; the round ends at the S-th, T_(r+1).

  A job is in flight at T_(r+1) when it started before T_(r+1) and is not one of the S:
  it is cancelled and its draw spent, and its worker starts round r + 1 with its next
  draw. The worker whose completion ends the round has nothing in flight — nor has one
  whose counted completion ties with it at T_(r+1) — so none of its draws is spent: its
  next draw serves round r + 1.
  """

  num_gradients: int

  def __post_init__(self):
    _check_count("algorithm_options.num_gradients", self.num_gradients,
                 meaning="S, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def round_times(self, draws, num_workers: int, num_rounds: int):
    s = self.num_gradients
    next_draw = np.zeros(num_workers, np.int64)  # each worker's next draw
    durations = np.empty(num_rounds)
    cancelled = np.empty(num_rounds, np.int64)
    ids = np.repeat(np.arange(num_workers), s)
    rows = np.arange(num_workers)
    for r in range(num_rounds):
      values = draws.upto(int(next_draw.max()) + s)
      # Worker i's first s completions from the round's start (at most s can count).
      window = values[rows[:, None], next_draw[:, None] + np.arange(s)]
      elapsed = np.cumsum(window, axis=1)
      first = np.lexsort((ids, elapsed.ravel()))[:s]
      end = elapsed.ravel()[first[-1]]
      counted = np.bincount(ids[first], minlength=num_workers)
      # Each worker's next job started at its last counted completion (0: the start).
      started = np.where(counted > 0, elapsed[rows, np.maximum(counted - 1, 0)], 0.0)
      in_flight = started < end
      next_draw += counted + in_flight
      durations[r], cancelled[r] = end, int(in_flight.sum())
      draws.refuse_short(next_draw, f"the trace covers {r} of the run's {num_rounds} rounds")
    return RoundTimes(durations, cancelled, next_draw)
