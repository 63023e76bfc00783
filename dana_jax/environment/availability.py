"""Availability (docs/spec.md §8.2): failures, preemption and elastic membership.

Worker i alternates up and down periods. :class:`UpDown`: up ~ Exponential(mean MTBF_i)
(or Weibull of shape k with that mean), down ~ Exponential(mean MTTR_i), every worker up
at time 0. :class:`SpotTrace`: a count of live workers per tick, in the JSON layout of
public spot-instance traces, ``{"metadata": {"gap_seconds": g}, "data": [n_0, n_1, …]}``;
workers 0 … n_m − 1 are up during tick m (a documented choice), and the trace repeats
from its start after its last tick. :class:`AlwaysUp` (the default) never fails.

What a failure does to a run is the schedule's (``dana_jax.schedule.events``): a worker
going down at u loses its in-flight job (its batch stays the worker's), and comes back at
u′ with a *rejoin*, a restart that reads the current parameters. Every part here depends
only on the environment's seed, so the schedule is still computed before training.

References:
  Douillard et al., "Streaming DiLoCo with overlapping communication", 2025
  (arXiv:2501.18512), and "Decoupled DiLoCo", 2025: training under failures.
  Wu et al., "Can't be late: optimizing spot instance savings under deadlines",
  NSDI 2024 (the public spot-availability traces' layout).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, ClassVar

import numpy as np

from dana_jax._checks import require as _require
from dana_jax.environment._values import check_per_worker, part_streams, per_worker
from dana_jax.errors import ConfigError
from dana_jax.specs import is_real

AVAILABILITY_TAG = 0xA7A1
WAIT_FOR_ALL = ("synchronous rounds: false, a participant that fails contributes nothing and "
                "the round ends with the others; true, the round waits for it to rejoin and "
                "redo its job")


class DownPeriods:
  """One run's down periods per worker, drawn on demand (docs/spec.md §8.2).

  :meth:`intervals` returns every period [u, u′) of a worker that starts before a time;
  asking for a later time only appends periods (the prefix property).
  """

  def __init__(self, num_workers: int, extend):
    self.num_workers = num_workers
    self._extend = extend  # (worker, periods list, until) -> None, appends periods
    self._periods: list[list[tuple[float, float]]] = [[] for _ in range(num_workers)]
    self._covered = np.zeros(num_workers)  # periods are known for every start < this

  def intervals(self, worker: int, until: float) -> np.ndarray:
    """float64 [M, 2]: worker's down periods [u, u′) with u < ``until``, in order."""
    while until > self._covered[worker]:
      self._covered[worker] = self._extend(worker, self._periods[worker], until)
    periods = self._periods[worker]
    count = int(np.searchsorted([u for u, _ in periods], until, side="left"))
    return np.asarray(periods[:count], np.float64).reshape(-1, 2)

  def next_period(self, worker: int, time: float) -> tuple[float, float]:
    """The first down period [u, u′) with u′ > ``time`` (u ≤ time: down at ``time``);
    (inf, inf) if there is none."""
    until = max(2.0 * time, time + 1.0)
    while True:
      found = self.intervals(worker, until)
      later = found[found[:, 1] > time]
      if later.size:
        return float(later[0, 0]), float(later[0, 1])
      if self._covered[worker] == math.inf or until > 1e300:
        return math.inf, math.inf
      until *= 4.0


@dataclasses.dataclass(frozen=True)
class AlwaysUp:
  """Every worker is up for the whole run (docs/spec.md §1: the default)."""

  is_default: ClassVar[bool] = True

  def validate(self, num_workers: int) -> None:
    del num_workers

  def periods(self, num_workers: int, seed: int) -> DownPeriods:
    del seed
    return DownPeriods(num_workers, lambda worker, periods, until: math.inf)


@dataclasses.dataclass(frozen=True)
class UpDown:
  """Up periods ~ Exponential(mean ``mtbf``) (Weibull of shape ``weibull_shape`` and the
  same mean when set), down periods ~ Exponential(mean ``mttr``); every worker starts up.

  ``mtbf``, ``mttr``: numbers or one per worker, in simulated time units (the mean batch
  time is 128); ``mtbf=inf``: that worker never fails. Each worker's periods come from its
  own stream of the environment seed: up, down, up, … alternately.
  """

  arguments: ClassVar[dict[str, str]] = {
      "mtbf": "mean up time (number or one per worker); inf: never fails",
      "mttr": "mean down time (number or one per worker)",
      "weibull_shape": "Weibull shape k of the up times (None: exponential)",
      "wait_for_all": WAIT_FOR_ALL,
  }

  mtbf: Any = math.inf
  mttr: Any = 1280.0
  weibull_shape: float | None = None
  wait_for_all: bool = False

  is_default: ClassVar[bool] = False

  def __post_init__(self):
    check_per_worker("environment.availability.mtbf", self.mtbf, low_open=True,
                     infinite=True, meaning="mean time between failures; inf: never fails")
    check_per_worker("environment.availability.mttr", self.mttr, low_open=True,
                     meaning="mean time to repair")
    _require(self.weibull_shape is None or (is_real(self.weibull_shape)
                                            and self.weibull_shape > 0),
             "environment.availability.weibull_shape", self.weibull_shape,
             "need a Weibull shape k > 0, or None (exponential up periods)")
    _require(isinstance(self.wait_for_all, bool), "environment.availability.wait_for_all",
             self.wait_for_all, "need true or false")

  def validate(self, num_workers: int) -> None:
    per_worker("environment.availability.mtbf", self.mtbf, num_workers)
    per_worker("environment.availability.mttr", self.mttr, num_workers)

  def periods(self, num_workers: int, seed: int) -> DownPeriods:
    mtbf = per_worker("environment.availability.mtbf", self.mtbf, num_workers)
    mttr = per_worker("environment.availability.mttr", self.mttr, num_workers)
    streams = part_streams(seed, AVAILABILITY_TAG, num_workers)
    shape = self.weibull_shape
    # Weibull(k) of mean m: scale m / Γ(1 + 1/k).
    weibull_scale = None if shape is None else 1.0 / math.gamma(1.0 + 1.0 / shape)
    ends = np.zeros(num_workers)  # where each worker's drawn periods end (it is up then)

    def up_time(i):
      if shape is None:
        return streams[i].exponential(mtbf[i])
      return streams[i].weibull(shape) * weibull_scale * mtbf[i]

    def extend(i, periods, until):
      if math.isinf(mtbf[i]):
        return math.inf
      while ends[i] <= until:
        u = ends[i] + up_time(i)
        back = u + streams[i].exponential(mttr[i])
        periods.append((float(u), float(back)))
        ends[i] = back
      return float(ends[i])

    return DownPeriods(num_workers, extend)


@dataclasses.dataclass(frozen=True, eq=False)
class SpotTrace:
  """Availability from a count of live workers per tick (docs/spec.md §8.2).

  ``trace``: the path of a JSON file, or its dict, ``{"metadata": {"gap_seconds": g},
  "data": [n_0, n_1, …]}``; workers 0 … n_m − 1 are up during tick m, which lasts
  g · ``time_per_second`` simulated time units. After the last tick the trace repeats.
  """

  arguments: ClassVar[dict[str, str]] = {
      "trace": 'a JSON file or dict {"metadata": {"gap_seconds": g}, "data": [n_0, …]}',
      "time_per_second": "simulated time units per second of the trace",
      "wait_for_all": WAIT_FOR_ALL,
  }

  trace: Any
  time_per_second: float = 1.0
  wait_for_all: bool = False

  is_default: ClassVar[bool] = False

  def __post_init__(self):
    field = "environment.availability.trace"
    trace = self.trace
    if isinstance(trace, (str, os.PathLike)):
      if not os.path.isfile(trace):
        raise ConfigError(f"{field}={os.fspath(trace)!r} is not allowed: need a JSON file "
                          '{"metadata": {"gap_seconds": g}, "data": [n_0, n_1, …]}.')
      try:
        with open(trace) as f:
          trace = json.load(f)
      except (OSError, ValueError) as e:
        raise ConfigError(f"{field}={os.fspath(self.trace)!r} is not allowed: not readable "
                          f"JSON ({type(e).__name__}).") from None
    layout = '{"metadata": {"gap_seconds": g > 0}, "data": [counts ≥ 0, …]}'
    ok = (isinstance(trace, dict) and isinstance(trace.get("metadata"), dict)
          and is_real(trace["metadata"].get("gap_seconds"))
          and trace["metadata"]["gap_seconds"] > 0
          and isinstance(trace.get("data"), (list, tuple)) and len(trace["data"]) >= 1
          and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                  for n in trace["data"]))
    _require(ok, field, "<trace>" if isinstance(trace, dict) else trace,
             f"need the layout {layout}")
    _require(max(trace["data"]) >= 1, f"{field}.data", "<all zero>",
             "at least one tick needs a live worker")
    _require(is_real(self.time_per_second) and self.time_per_second > 0,
             "environment.availability.time_per_second", self.time_per_second,
             "need simulated time units per second > 0")
    _require(isinstance(self.wait_for_all, bool), "environment.availability.wait_for_all",
             self.wait_for_all, "need true or false")
    object.__setattr__(self, "trace", trace)

  def validate(self, num_workers: int) -> None:
    del num_workers

  @property
  def tick(self) -> float:
    return float(self.trace["metadata"]["gap_seconds"]) * float(self.time_per_second)

  def periods(self, num_workers: int, seed: int) -> DownPeriods:
    del seed  # the trace is the realisation
    counts = np.asarray(self.trace["data"], np.int64)
    tick, length = self.tick, counts.size
    cycle = tick * length

    def one_cycle(i):  # worker i's down periods in [0, cycle)
      down = counts <= i
      periods, m = [], 0
      while m < length:
        if down[m]:
          start = m
          while m < length and down[m]:
            m += 1
          periods.append((start * tick, m * tick))
        else:
          m += 1
      return periods

    cached, cycles = {}, np.zeros(num_workers, np.int64)

    def extend(i, periods, until):
      if i not in cached:
        cached[i] = one_cycle(i)
      if not cached[i]:
        return math.inf
      if cached[i] == [(0.0, cycle)]:  # never up
        periods[:] = [(0.0, math.inf)]
        return math.inf
      repeat = int(cycles[i])
      while repeat * cycle <= until:
        for u, back in cached[i]:
          u, back = u + repeat * cycle, back + repeat * cycle
          if periods and periods[-1][1] == u:  # down across the cycle's end: one period
            periods[-1] = (periods[-1][0], back)
          else:
            periods.append((u, back))
        repeat += 1
      cycles[i] = repeat
      # A period reaching the cycle's end may continue into the next cycle: final only
      # once the next cycle is drawn.
      end = repeat * cycle
      return periods[-1][0] if periods[-1][1] == end else end

    return DownPeriods(num_workers, extend)


# Every availability process by name: ``config.environment.availability = dict(name=...,
# **its arguments)``.
AVAILABILITY = {"always": AlwaysUp, "up_down": UpDown, "trace": SpotTrace}
