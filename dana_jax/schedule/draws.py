"""What every schedule starts from: the timing model's batch-time draws, per worker and
job, and the checks of a schedule's inputs (docs/spec.md §1).

A worker's k-th job takes X_ik, the k-th draw of its own stream of the timing model
(:mod:`dana_jax.timing`); :class:`WorkerDraws` draws them on demand, so the
asynchronous events (:mod:`dana_jax.schedule.events`) and the synchronous rounds
(:mod:`dana_jax.schedule.rounds`) read the same values for the same seed.
"""

from __future__ import annotations

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.timing import TIMING_MODELS, TimingModel

# Host bytes of one worker's numpy stream (its SeedSequence and Generator).
STREAM_BYTES = 900


class WorkerDraws:
  """Every worker's batch-time draws X_i0, X_i1, … (one per job), drawn on demand.

  A model without end is asked ahead in growing chunks (its streams continue, so the
  values do not change). A finite one (a trace) is never asked past its jobs: a job it
  lacks reads +inf (it never completes), and the schedule refuses — naming the jobs it
  needs — only when its run uses that job, i.e. when the job starts before the run's
  end (:meth:`refuse_short`). So a trace of exactly the jobs a run uses is enough.
  """

  def __init__(self, timing: TimingModel, num_workers: int, seed: int):
    self.timing, self.num_workers = timing, num_workers
    self.streams = timing.worker_streams(num_workers, seed)
    limit = timing.jobs_available(num_workers)
    self.limit = None if limit is None else np.asarray(limit, np.int64)
    self.drawn = np.zeros(num_workers, np.int64)  # real draws per worker
    self.values = np.zeros((num_workers, 0))

  def upto(self, width: int) -> np.ndarray:
    """At least the first ``width`` jobs of every worker, [N, ≥ width]; +inf past a finite
    model's jobs."""
    have = self.values.shape[1]
    if width <= have:
      return self.values
    width = max(int(width), 2 * have)
    target = np.full(self.num_workers, width, np.int64)
    if self.limit is not None:
      target = np.minimum(target, self.limit)
    counts = np.maximum(target - self.drawn, 0)
    values = np.full((self.num_workers, width), np.inf)
    values[:, :have] = self.values
    if counts.any():
      parts = self.timing.draw_each(self.streams, self.drawn.copy(), counts)
      for i, part in enumerate(parts):
        values[i, self.drawn[i]:self.drawn[i] + counts[i]] = part
      self.drawn += counts
    self.values = values
    return values

  def job(self, worker: int, index: int) -> float:
    """X of job ``index`` of ``worker`` (+inf past a finite model's jobs)."""
    return float(self.upto(index + 1)[worker, index])

  def refuse_short(self, used, detail: str) -> None:
    """Raises ConfigError (the timing model's message) when the jobs a run uses, ``used``
    [N], include one the model does not have; ``detail`` says how far it got."""
    short = np.flatnonzero(np.asarray(used) > self.drawn)
    if short.size:
      worker = int(short[0])
      self.timing.refuse(worker, int(used[worker]), detail)


def validate_schedule_args(timing, num_workers, num_steps, block_size) -> None:
  """Refuses a timing model that is not one, or counts that are not integers ≥ 1."""
  _require(isinstance(timing, TimingModel), "timing", type(timing).__name__,
           f"use one of the timing models {sorted(TIMING_MODELS)}")
  _require(is_int(num_workers, 1), "num_workers", num_workers, "need an integer ≥ 1")
  _require(is_int(num_steps, 1), "num_steps", num_steps, "need an integer ≥ 1")
  _require(is_int(block_size, 1), "block_size", block_size, "need an integer ≥ 1")
  timing.validate(num_workers)


def check_count(field, value, at_most=None, meaning=""):
  """Refuses a rule's count (R, m, S) that is missing or not an integer in [1, at_most]."""
  _require(value is not None, field, value, f"it is required ({meaning}), no default")
  _require(is_int(value, 1), field, value, f"need an integer ≥ 1 ({meaning})")
  if at_most is not None:
    _require(value <= at_most, field, value,
             f"must be at most num_workers = {at_most} ({meaning})")

