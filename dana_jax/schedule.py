"""Timing models and the master-step schedule of an asynchronous simulation.

The order in which worker gradients reach the parameter server depends only on
the timing model and its seed, never on training (SPEC §1). It is therefore
computed here, once, in plain numpy, and handed to the engine as arrays:

* ``worker[t]``: the worker whose gradient master step ``t`` applies,
* ``lag[t]``: τ_t = t − r_k, the number of other updates applied between that
  worker's read and step ``t``,
* ``time[t]``: the simulated time at which the gradient arrives,
* ``block_starts``: a partition of the steps into *blocks*, runs of
  consecutive steps whose workers are all distinct (capped at ``block_size``).
  All gradients applied inside a block were read before it, which is what lets
  the engine compute a block's new gradients together (DESIGN.md).

Also here: the Monte-Carlo speedup model of ASGD and SSGD (the GA paper's
Figure 12).

References:
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), §5 and Appendix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

MEAN_BATCH_TIME = 128.0


def _require(condition: bool, field: str, value, allowed: str) -> None:
  if not condition:
    raise ValueError(f"{field}={value!r} is not allowed: {allowed}.")


# --------------------------------------------------------------------------
# Timing models.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimingModel:
  """Base class: draws the batch times ``X[i, j]`` of every worker."""

  def validate(self, num_workers: int) -> None:
    del num_workers

  def mean(self) -> float:
    raise NotImplementedError

  def worker_streams(self, num_workers: int, seed: int) -> list[np.random.Generator]:
    """One independent numpy stream per worker (plus one for shared draws)."""
    children = np.random.SeedSequence([int(seed), 0x5EED]).spawn(num_workers + 1)
    return [np.random.default_rng(c) for c in children]

  def draw(self, streams: list[np.random.Generator], first_job: int, count: int) -> np.ndarray:
    """Batch times of jobs ``first_job .. first_job + count - 1``, shape [N, count].

    Successive calls with consecutive ranges continue the same streams, so the
    schedule of T steps is a prefix of the schedule of more steps.
    """
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class GammaTiming(TimingModel):
  """Batch times X ~ Gamma(shape, scale), independent across workers and jobs.

  With ``worker_speed_shape`` set, each worker first draws a persistent mean
  batch time m_i ~ Gamma(worker_speed_shape, mean / worker_speed_shape) and then
  X_ij ~ Gamma(shape, m_i / shape): slow and fast machines (SPEC §1).
  """

  shape: float = 100.0
  scale: float = 1.28
  worker_speed_shape: float | None = None

  def validate(self, num_workers: int) -> None:
    _require(np.isfinite(self.shape) and self.shape > 0, "timing.shape", self.shape,
             "the gamma shape must be a positive finite number")
    _require(np.isfinite(self.scale) and self.scale > 0, "timing.scale", self.scale,
             "the gamma scale must be a positive finite number")
    if self.worker_speed_shape is not None:
      _require(np.isfinite(self.worker_speed_shape) and self.worker_speed_shape > 0,
               "timing.worker_speed_shape", self.worker_speed_shape,
               "must be a positive finite number, or None for identical workers")

  def mean(self) -> float:
    return self.shape * self.scale

  def worker_scales(self, streams: list[np.random.Generator]) -> np.ndarray:
    num_workers = len(streams) - 1
    if self.worker_speed_shape is None:
      return np.full(num_workers, self.scale)
    # The shared stream (last) draws the persistent per-worker mean times.
    shared = np.random.default_rng(streams[-1].bit_generator.seed_seq)  # fresh copy
    means = shared.gamma(self.worker_speed_shape, self.mean() / self.worker_speed_shape,
                         size=num_workers)
    return means / self.shape

  def draw(self, streams, first_job, count):
    del first_job  # The streams carry the position.
    scales = self.worker_scales(streams)
    return np.stack([s.gamma(self.shape, 1.0, size=count) * scales[i]
                     for i, s in enumerate(streams[:-1])])


def homogeneous(mean: float = MEAN_BATCH_TIME, shape: float = 100.0) -> GammaTiming:
  """The GA paper's homogeneous environment: Gamma(100, 1.28), CV 0.1."""
  return GammaTiming(shape=shape, scale=mean / shape)


def heterogeneous(mean: float = MEAN_BATCH_TIME, shape: float = 4.0,
                  worker_speed_shape: float | None = None) -> GammaTiming:
  """A heterogeneous environment: same mean, gamma shape 4 (CV 0.5) by default.

  The GA paper's exact parameters are not known (SPEC §1, a documented
  choice). ``worker_speed_shape`` adds persistent per-worker speeds.
  """
  return GammaTiming(shape=shape, scale=mean / shape, worker_speed_shape=worker_speed_shape)


@dataclasses.dataclass(frozen=True)
class ConstantTiming(TimingModel):
  """Every batch takes the same time: round robin, τ = N − 1 after the first round."""

  batch_time: float = MEAN_BATCH_TIME

  def validate(self, num_workers):
    _require(np.isfinite(self.batch_time) and self.batch_time > 0, "timing.batch_time",
             self.batch_time, "must be a positive finite number")

  def mean(self):
    return self.batch_time

  def draw(self, streams, first_job, count):
    return np.full((len(streams) - 1, count), float(self.batch_time))


@dataclasses.dataclass(frozen=True, eq=False)
class TraceTiming(TimingModel):
  """A user-supplied trace: ``batch_times[i, j]`` is worker i's j-th batch time."""

  batch_times: np.ndarray

  def validate(self, num_workers):
    times = np.asarray(self.batch_times, dtype=np.float64)
    _require(times.ndim == 2, "timing.batch_times.ndim", times.ndim,
             "the trace must be a 2-D array [num_workers, num_jobs]")
    _require(times.shape[0] == num_workers, "timing.batch_times.shape[0]", times.shape[0],
             f"the trace must have one row per worker (num_workers={num_workers})")
    _require(bool(np.all(np.isfinite(times)) and np.all(times > 0)), "timing.batch_times",
             "<array>", "every batch time must be positive and finite")

  def mean(self):
    return float(np.mean(self.batch_times))

  def draw(self, streams, first_job, count):
    times = np.asarray(self.batch_times, dtype=np.float64)
    if first_job + count > times.shape[1]:
      raise ValueError(
          f"timing.batch_times has {times.shape[1]} jobs per worker, which does not cover "
          f"the requested schedule (at least {first_job + count} jobs per worker would be "
          "needed): supply a longer trace or simulate fewer steps.")
    return times[:, first_job:first_job + count]


TIMING_MODELS = {"homogeneous": homogeneous, "heterogeneous": heterogeneous,
                 "constant": ConstantTiming, "trace": TraceTiming}


def make_timing(name: str, **kwargs) -> TimingModel:
  """Builds a timing model by name: one of ``TIMING_MODELS``."""
  if name not in TIMING_MODELS:
    raise ValueError(f"timing.name={name!r} is not allowed: choose one of "
                     f"{sorted(TIMING_MODELS)}.")
  return TIMING_MODELS[name](**kwargs)


# --------------------------------------------------------------------------
# The schedule.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
  """The arrival order of T master steps (SPEC §1).

  Attributes:
    num_workers: N.
    worker: int32 [T], arriving worker k_t.
    lag: int32 [T], τ_t = t − r_k.
    time: float64 [T], simulated completion time s_t.
    block_starts: int64 [num_blocks + 1], block b is steps
      ``block_starts[b] .. block_starts[b + 1] - 1``.
    block_size: the cap K used to make the blocks.
  """

  num_workers: int
  worker: np.ndarray
  lag: np.ndarray
  time: np.ndarray
  block_starts: np.ndarray
  block_size: int

  @property
  def num_steps(self) -> int:
    return int(self.worker.shape[0])

  @property
  def num_blocks(self) -> int:
    return int(self.block_starts.shape[0] - 1)

  def padded_blocks(self, start_block: int = 0, stop_block: int | None = None):
    """Blocks ``start_block..stop_block-1`` as padded [nb, K] step indices and mask.

    Padded entries hold step index -1 and mask False.
    """
    stop_block = self.num_blocks if stop_block is None else stop_block
    starts = self.block_starts[start_block:stop_block]
    lengths = self.block_starts[start_block + 1:stop_block + 1] - starts
    offsets = np.arange(self.block_size)
    mask = offsets[None, :] < lengths[:, None]
    steps = np.where(mask, starts[:, None] + offsets[None, :], -1)
    return steps.astype(np.int32), mask


def _completion_order(timing: TimingModel, num_workers: int, num_steps: int, seed: int):
  """Workers and times of the first ``num_steps`` completions, ties to lower id."""
  streams = timing.worker_streams(num_workers, seed)
  per_worker = max(1, math.ceil(1.25 * num_steps / num_workers) + 8)
  times = np.cumsum(timing.draw(streams, 0, per_worker), axis=1)
  while True:
    if times.shape[1] * num_workers >= num_steps:
      flat_t = times.ravel()
      flat_w = np.repeat(np.arange(num_workers), times.shape[1])
      order = np.lexsort((flat_w, flat_t))[:num_steps]
      # A job not drawn yet ends strictly after its worker's last drawn one.
      if np.all(times[:, -1] >= flat_t[order[-1]]):
        return flat_w[order].astype(np.int32), flat_t[order]
    extra = np.cumsum(timing.draw(streams, times.shape[1], times.shape[1]), axis=1)
    times = np.concatenate([times, times[:, -1:] + extra], axis=1)


def lags_from_workers(worker: np.ndarray, num_workers: int) -> np.ndarray:
  """τ_t = t − r_k, with r_k = 1 + the previous step of worker k (0 at first)."""
  num_steps = worker.shape[0]
  lag = np.empty(num_steps, dtype=np.int32)
  steps = np.arange(num_steps)
  for k in range(num_workers):
    mine = steps[worker == k]
    if mine.size:
      read = np.concatenate([[0], mine[:-1] + 1])
      lag[mine] = mine - read
  return lag


def partition_blocks(worker: np.ndarray, block_size: int,
                     boundaries: Sequence[int] = ()) -> np.ndarray:
  """Greedy runs of distinct workers, capped at ``block_size``.

  A block also ends at every step index in ``boundaries`` (chunk ends), so a
  host chunk always consists of whole blocks.

  Returns:
    int64 array of block start offsets, with ``len(worker)`` appended.
  """
  num_steps = len(worker)
  cut = np.zeros(num_steps + 1, dtype=bool)
  cut[[b for b in boundaries if 0 < b < num_steps]] = True
  starts = [0]
  seen: set[int] = set()
  for t in range(num_steps):
    k = int(worker[t])
    if t > starts[-1] and (k in seen or t - starts[-1] >= block_size or cut[t]):
      starts.append(t)
      seen = set()
    seen.add(k)
  starts.append(num_steps)
  return np.asarray(starts, dtype=np.int64)


def make_schedule(timing: TimingModel, num_workers: int, num_steps: int, *, seed: int = 0,
                  block_size: int = 1, boundaries: Sequence[int] = ()) -> Schedule:
  """Computes the arrival schedule of ``num_steps`` master steps (SPEC §1).

  Args:
    timing: a timing model (``homogeneous()``, ``heterogeneous()``,
      ``ConstantTiming()``, ``TraceTiming(times)``).
    num_workers: N ≥ 1.
    num_steps: T ≥ 1 master steps.
    seed: seeds the timing model's random streams.
    block_size: K ≥ 1, the largest number of gradients computed together.
    boundaries: step indices at which a block must end (chunk ends).

  Returns:
    A :class:`Schedule`.
  """
  validate_schedule_args(timing, num_workers, num_steps, block_size)
  worker, time = _completion_order(timing, num_workers, num_steps, seed)
  lag = lags_from_workers(worker, num_workers)
  starts = partition_blocks(worker, block_size, boundaries)
  return Schedule(num_workers=num_workers, worker=worker, lag=lag, time=time,
                  block_starts=starts, block_size=block_size)


def validate_schedule_args(timing, num_workers, num_steps, block_size) -> None:
  _require(isinstance(timing, TimingModel), "timing", type(timing).__name__,
           f"use one of the timing models {sorted(TIMING_MODELS)}")
  _require(isinstance(num_workers, (int, np.integer)) and num_workers >= 1, "num_workers",
           num_workers, "need an integer ≥ 1")
  _require(isinstance(num_steps, (int, np.integer)) and num_steps >= 1, "num_steps",
           num_steps, "need an integer ≥ 1")
  _require(isinstance(block_size, (int, np.integer)) and block_size >= 1, "block_size",
           block_size, "need an integer ≥ 1")
  timing.validate(num_workers)


def synchronous_times(timing: TimingModel, num_workers: int, num_steps: int,
                      seed: int = 0) -> np.ndarray:
  """Simulated end times of SSGD iterations: each takes max_i X_i (SPEC §1)."""
  validate_schedule_args(timing, num_workers, num_steps, 1)
  streams = timing.worker_streams(num_workers, seed)
  return np.cumsum(timing.draw(streams, 0, num_steps).max(axis=0))


# --------------------------------------------------------------------------
# Speedup model (GA paper, Figure 12).
# --------------------------------------------------------------------------


def estimate_speedup(timing: TimingModel, num_workers: Sequence[int], *,
                     num_runs: int = 20, num_iterations: int = 100_000,
                     seed: int = 0) -> dict[str, np.ndarray]:
  """Monte-Carlo speedup of N workers over one, for ASGD and SSGD.

  Speedup is gradients per unit of simulated time relative to one worker of
  mean batch time ``timing.mean()``; communication is not modelled. ASGD
  completes ``num_iterations`` gradients by the ``num_iterations``-th
  completion over all workers; SSGD computes N gradients per iteration and an
  iteration takes max_i X_i.

  Returns:
    ``{"num_workers", "asgd", "ssgd"}`` with the mean over runs, and
    ``"asgd_std"``, ``"ssgd_std"``.
  """
  _require(num_runs >= 1, "num_runs", num_runs, "need ≥ 1")
  _require(num_iterations >= 1, "num_iterations", num_iterations, "need ≥ 1")
  mean = timing.mean()
  asgd, ssgd = [], []
  for n in num_workers:
    a_runs, s_runs = [], []
    for run in range(num_runs):
      run_seed = seed * 1_000_003 + run * 7919 + int(n)
      _, times = _completion_order(timing, int(n), num_iterations, run_seed)
      a_runs.append(num_iterations * mean / times[-1])
      s_total = synchronous_times(timing, int(n), num_iterations, run_seed + 1)[-1]
      s_runs.append(int(n) * num_iterations * mean / s_total)
    asgd.append(a_runs)
    ssgd.append(s_runs)
  asgd, ssgd = np.asarray(asgd), np.asarray(ssgd)
  return {"num_workers": np.asarray(num_workers), "asgd": asgd.mean(1), "ssgd": ssgd.mean(1),
          "asgd_std": asgd.std(1), "ssgd_std": ssgd.std(1)}
