"""The rounds of a synchronous simulation (docs/spec.md §2.9, §6.0, §6.3, §6.4) and every
round rule.

Round r applies the mean of G gradients all computed at θ_r; a *round rule* gives G
and the rounds' durations from the workers' batch-time draws:

* :class:`SynchronousRule`: SSGD — all N workers; a round takes max_i X_i.
* :class:`FastestRule`: m-synchronous SGD — each round the m fastest of N
  one-gradient jobs; the round ends at the m-th completion.
* :class:`RennalaRule`: Rennala SGD — each round every worker runs jobs back to back;
  the first S completions over all workers are the round's gradients; the round ends
  at the S-th; the jobs then in flight are cancelled.

A new rule has ``gradients(num_workers)`` and ``round_times(draws, num_workers,
num_rounds) -> RoundTimes`` (see :func:`make_rounds`).

References:
  Chen, Pan, Monga, Bengio, Jozefowicz, "Revisiting Distributed Synchronous
  SGD", 2016 (arXiv:1604.00981).
  Tyurin, Richtárik, "Optimal Time Complexities of Parallel Stochastic
  Optimization Methods Under a Fixed Computation Model", NeurIPS 2023
  (arXiv:2305.12387).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.schedule.draws import STREAM_BYTES, WorkerDraws, check_count, validate_schedule_args
from dana_jax.timing import TimingModel


class RoundTimes(NamedTuple):
  """What a round rule's ``round_times`` returns: ``durations`` [R] (T_(r+1) − T_r),
  ``cancelled`` [R] (jobs in flight at each round's end, cancelled) and ``jobs_used`` [N]
  (the draws of each worker the run uses); for the cost (docs/spec.md §8.5), optionally
  ``computing`` [R] (the summed compute time of each round's counted gradients) and
  ``lost`` [R] (the summed elapsed time of its cancelled jobs)."""

  durations: np.ndarray
  cancelled: np.ndarray
  jobs_used: np.ndarray
  computing: np.ndarray | None = None
  lost: np.ndarray | None = None


def one_draw_per_round(draws: WorkerDraws, num_rounds: int) -> np.ndarray:
  """[N, R]: each worker's draw of each round (SSGD, m-sync: one job per worker and
  round), refused when a finite model has fewer than R."""
  values = draws.upto(num_rounds)[:, :num_rounds]
  draws.refuse_short(np.full(draws.num_workers, num_rounds),
                     f"{num_rounds} rounds of one batch time per worker each")
  return values


@dataclasses.dataclass(frozen=True)
class SynchronousRule:
  """SSGD's rounds (spec §2.9): all N workers, a round takes max_i X_i of one draw each."""

  def gradients(self, num_workers: int) -> int:
    return num_workers

  def round_times(self, draws: WorkerDraws, num_workers: int, num_rounds: int) -> RoundTimes:
    values = one_draw_per_round(draws, num_rounds)
    return RoundTimes(values.max(axis=0), np.zeros(num_rounds, np.int64),
                      np.full(num_workers, num_rounds, np.int64), computing=values.sum(axis=0),
                      lost=np.zeros(num_rounds))



@dataclasses.dataclass(frozen=True)
class FastestRule:
  """m-synchronous rounds (spec §6.3): one draw X_i per worker and round; the round's
  G = m gradients are the m earliest (ties: lower id); it lasts the m-th smallest X_i."""

  num_gradients: int
  num_workers: int

  def __post_init__(self):
    check_count("algorithm_options.num_gradients", self.num_gradients, self.num_workers,
                 "m, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def round_times(self, draws, num_workers: int, num_rounds: int):
    values = one_draw_per_round(draws, num_rounds)  # [N, rounds]
    m = self.num_gradients
    ordered = np.sort(values, axis=0)
    # The N − m backup workers' jobs are in flight at the m-th completion: cancelled.
    return RoundTimes(ordered[m - 1], np.full(num_rounds, num_workers - m, np.int64),
                      np.full(num_workers, num_rounds, np.int64),
                      computing=ordered[:m].sum(axis=0), lost=(num_workers - m) * ordered[m - 1])


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
    check_count("algorithm_options.num_gradients", self.num_gradients,
                 meaning="S, the gradients per round")

  def gradients(self, num_workers: int) -> int:
    return self.num_gradients

  def round_times(self, draws, num_workers: int, num_rounds: int):
    s = self.num_gradients
    next_draw = np.zeros(num_workers, np.int64)  # each worker's next draw
    durations = np.empty(num_rounds)
    cancelled = np.empty(num_rounds, np.int64)
    computing, lost = np.empty(num_rounds), np.empty(num_rounds)
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
      computing[r] = float(np.sum(window.ravel()[first]))
      draws.refuse_short(next_draw, f"the trace covers {r} of the run's {num_rounds} rounds")
      lost[r] = float(np.sum(np.where(in_flight, end - started, 0.0)))
    return RoundTimes(durations, cancelled, next_draw, computing=computing, lost=lost)


@dataclasses.dataclass(frozen=True, eq=False)
class Rounds:
  """The rounds of a synchronous simulation (spec §6.0).

  Attributes:
    num_workers: N.
    gradients_per_round: G; round r applies the mean of the gradients of
      batches rG … rG + G − 1 of the stream, all computed at θ_r.
    time: float64 [num_rounds], T_(r+1), the end time of each round.
    cancelled: int64 [num_rounds], jobs in flight at each round's end, cancelled.
    jobs_used: int64 [N], the draws of each worker the run uses (None: not known, a
      rule of the older ``durations`` form).
    computing, lost: float64 [num_rounds] (docs/spec.md §8.5), the summed compute time of
      each round's counted gradients and elapsed time of its cancelled jobs (None: the
      rule does not say).
    gradients: int64 [num_rounds], the gradients each round averages when failures shrink
      rounds (docs/spec.md §8.2: the first of its G batches), else None (all G).
    communicating: float64 [num_rounds], its participants' summed transfer times (None:
      free links).
    down: each worker's down periods [M, 2] clipped to the end (None: always up).
  """

  num_workers: int
  gradients_per_round: int
  time: np.ndarray
  cancelled: np.ndarray
  jobs_used: np.ndarray | None = None
  computing: np.ndarray | None = None
  lost: np.ndarray | None = None
  gradients: np.ndarray | None = None
  communicating: np.ndarray | None = None
  down: tuple | None = None

  def cancelled_jobs(self, start: int, stop: int) -> int:
    """Jobs cancelled in rounds ``start..stop-1``."""
    return int(np.sum(self.cancelled[start:stop]))

  @property
  def num_steps(self) -> int:
    return int(self.time.shape[0])


def make_rounds(timing: TimingModel, num_workers: int, num_rounds: int, *, seed: int = 0,
                rule=None, environment=None, num_params: int | None = None) -> Rounds:
  """The rounds of ``rule`` (default :class:`SynchronousRule`, SSGD); in ``environment``
  (links, failures, slowdowns: :mod:`dana_jax.schedule.environment_rounds`, docs/spec.md
  §8) when one of those parts is not at its default, then needing ``num_params`` for
  finite bandwidths.

  A rule has ``gradients(num_workers)`` and either ``round_times(draws, num_workers,
  num_rounds)`` (a :class:`RoundTimes` from a :class:`WorkerDraws`) or
  ``durations(timing, streams, num_workers, num_rounds)`` (the rounds' durations; an
  optional ``cancelled_per_round(num_workers)``, default 0).
  """
  validate_schedule_args(timing, num_workers, num_rounds, 1)
  rule = SynchronousRule() if rule is None else rule
  gradients = rule.gradients(num_workers)
  _require(is_int(gradients, 1), "round_rule.gradients", gradients, "need an integer ≥ 1")
  if environment is not None and not environment.times_default():
    from dana_jax.schedule.environment_rounds import environment_rounds
    environment.validate(num_workers)
    _require(num_params is None or is_int(num_params, 1), "num_params", num_params,
             "need the model's parameter count (an integer ≥ 1)")
    durations, counts, cancelled, used, computing, lost, communicating, down = \
        environment_rounds(rule, timing, num_workers, num_rounds, seed, environment,
                           num_params or 1)
    shrunk = None if environment.availability.is_default else counts
    return Rounds(num_workers, int(gradients), np.cumsum(durations), cancelled, used,
                  computing=computing, lost=lost, gradients=shrunk,
                  communicating=communicating,
                  down=None if environment.availability.is_default else down)
  draws = WorkerDraws(timing, num_workers, seed)
  computing = lost = None
  if hasattr(rule, "round_times"):
    times = rule.round_times(draws, num_workers, num_rounds)
    durations, cancelled, used = times[:3]
    computing, lost = (getattr(times, "computing", None), getattr(times, "lost", None))
  else:
    durations = rule.durations(timing, draws.streams, num_workers, num_rounds)
    per_round = getattr(rule, "cancelled_per_round", lambda n: 0)(num_workers)
    cancelled, used = np.full(num_rounds, int(per_round)), None
  durations = np.asarray(durations, np.float64)
  _require(durations.shape == (num_rounds,), "round_rule.durations", durations.shape,
           f"need one duration per round ({num_rounds})")
  return Rounds(num_workers, int(gradients), np.cumsum(durations),
                np.asarray(cancelled, np.int64), None if used is None else np.asarray(used),
                computing=None if computing is None else np.asarray(computing, np.float64),
                lost=None if lost is None else np.asarray(lost, np.float64))


def synchronous_times(timing: TimingModel, num_workers: int, num_steps: int,
                      seed: int = 0) -> np.ndarray:
  """Simulated end times of SSGD iterations: each takes max_i X_i (spec §1)."""
  return make_rounds(timing, num_workers, num_steps, seed=seed).time


def rounds_nbytes(num_workers: int, num_rounds: int, gradients_per_round: int,
                  all_workers_draw: bool = True) -> int:
  """A lower bound on the host bytes :func:`make_rounds` holds at its peak: the N + 1
  streams and the rounds' batch-time draws, float64 (one per worker and round when
  every worker draws once per round — SSGD, m-sync —, else at least G per round)."""
  n, r = int(num_workers), int(num_rounds)
  per_round = n if all_workers_draw else max(1, int(gradients_per_round))
  return (n + 1) * STREAM_BYTES + 8 * per_round * r + 16 * r
