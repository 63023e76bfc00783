"""Changing speeds (docs/spec.md §8.3): stragglers that come and go.

Worker i's compute draws are multiplied by its slowdown s_i(t) ≥ 1 taken at the job's
start (its read time). :class:`StragglerChain`: a two-state Markov chain per worker,
normal (s = 1) ↔ slow (s = ``factor``), with exponential sojourns of means
``normal_time`` and ``slow_time``, every worker starting normal. :class:`StepSlowdown`: a
step function per worker ("worker 6 is 3× slower from time 50,000"). :class:`ConstantSpeed`
(the default) is s = 1 throughout. Heavy-tailed and measured batch times are compute
timing models (``dana_jax.timing``: log-normal, Pareto, the Alibaba PAI traces).

References:
  Maranjyan, Tyurin, Richtárik, "Ringmaster ASGD", ICML 2025 (arXiv:2501.16168), and
  Tyurin, "Tight time complexities in parallel stochastic optimization with arbitrary
  computation dynamics", ICLR 2025 (arXiv:2408.04929): time-varying worker speeds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.environment._values import check_per_worker, part_streams, per_worker
from dana_jax.specs import is_real

SPEED_TAG = 0x5B0D


class Slowdowns:
  """One run's slowdown per worker, a step function of time drawn on demand.

  :meth:`segments` gives worker i's ``(starts, factors)``: factor ``factors[m]`` on
  ``[starts[m], starts[m + 1])``, ``starts[0] = 0``; asking for a later time only appends
  (the prefix property).
  """

  def __init__(self, num_workers: int, extend):
    self.num_workers = num_workers
    self._extend = extend  # (worker, starts, factors, until) -> covered time
    self._starts = [[0.0] for _ in range(num_workers)]
    self._factors = [[1.0] for _ in range(num_workers)]
    self._covered = np.zeros(num_workers)

  def _cover(self, worker, until):
    while until >= self._covered[worker]:
      self._covered[worker] = self._extend(worker, self._starts[worker],
                                           self._factors[worker], until)

  def segments(self, worker: int, until: float) -> tuple[np.ndarray, np.ndarray]:
    """Worker's segments that start at or before ``until``: (starts [M], factors [M])."""
    self._cover(worker, until)
    count = int(np.searchsorted(self._starts[worker], until, side="right"))
    return (np.asarray(self._starts[worker][:count], np.float64),
            np.asarray(self._factors[worker][:count], np.float64))

  def factor(self, worker: int, time: float) -> float:
    """s_worker(time)."""
    self._cover(worker, time)
    m = int(np.searchsorted(self._starts[worker], time, side="right")) - 1
    return float(self._factors[worker][m])


@dataclasses.dataclass(frozen=True)
class ConstantSpeed:
  """Every worker keeps its speed: s_i(t) = 1 (the default)."""

  is_default: ClassVar[bool] = True

  def validate(self, num_workers: int) -> None:
    del num_workers

  def slowdowns(self, num_workers: int, seed: int) -> Slowdowns:
    del seed
    return Slowdowns(num_workers, lambda worker, starts, factors, until: math.inf)


@dataclasses.dataclass(frozen=True)
class StragglerChain:
  """A two-state Markov chain per worker: normal (s = 1) for Exponential(``normal_time``)
  time, then slow (s = ``factor``) for Exponential(``slow_time``), and so on; every worker
  starts normal, each from its own stream of the environment seed. ``normal_time``,
  ``slow_time`` and ``factor`` are numbers or one per worker."""

  arguments: ClassVar[dict[str, str]] = {
      "normal_time": "mean time at normal speed (number or one per worker)",
      "slow_time": "mean time slow (number or one per worker)",
      "factor": "slowdown s ≥ 1 while slow (number or one per worker)",
  }

  normal_time: Any = 12800.0
  slow_time: Any = 1280.0
  factor: Any = 4.0

  is_default: ClassVar[bool] = False

  def __post_init__(self):
    check_per_worker("environment.speed.normal_time", self.normal_time, low_open=True,
                     meaning="mean time a worker stays at its normal speed")
    check_per_worker("environment.speed.slow_time", self.slow_time, low_open=True,
                     meaning="mean time a worker stays slow")
    check_per_worker("environment.speed.factor", self.factor, low=1.0,
                     meaning="the slowdown s ≥ 1 of a slow worker's batch times")

  def validate(self, num_workers: int) -> None:
    for name in ("normal_time", "slow_time", "factor"):
      per_worker(f"environment.speed.{name}", getattr(self, name), num_workers)

  def slowdowns(self, num_workers: int, seed: int) -> Slowdowns:
    normal = per_worker("environment.speed.normal_time", self.normal_time, num_workers)
    slow = per_worker("environment.speed.slow_time", self.slow_time, num_workers)
    factor = per_worker("environment.speed.factor", self.factor, num_workers)
    streams = part_streams(seed, SPEED_TAG, num_workers)

    def extend(i, starts, factors, until):
      # Segment m is normal for even m, slow for odd m; each lasts an exponential sojourn
      # of its state's mean.
      while starts[-1] <= until:
        normal_now = len(starts) % 2 == 1
        starts.append(starts[-1] + streams[i].exponential(normal[i] if normal_now
                                                           else slow[i]))
        factors.append(float(factor[i]) if normal_now else 1.0)
      return starts[-1]

    return Slowdowns(num_workers, extend)


@dataclasses.dataclass(frozen=True)
class StepSlowdown:
  """Slowdowns that change at given times: ``changes`` is a list of ``(worker, time,
  factor)``: from ``time`` on, ``worker``'s batch times are multiplied by ``factor`` ≥ 1
  (until its next change). ``[(6, 50000.0, 3.0)]``: worker 6 is 3× slower from time 50,000.
  """

  arguments: ClassVar[dict[str, str]] = {
      "changes": "list of (worker, time, factor): from time on, worker's slowdown",
  }

  changes: tuple = ()

  is_default: ClassVar[bool] = False

  def __post_init__(self):
    field = "environment.speed.changes"
    allowed = "need a list of (worker, time ≥ 0, factor ≥ 1) triples"
    changes = self.changes
    _require(isinstance(changes, (list, tuple)), field, changes, allowed)
    for change in changes:
      ok = (isinstance(change, (list, tuple)) and len(change) == 3 and is_int(change[0], 0)
            and is_real(change[1]) and change[1] >= 0 and is_real(change[2])
            and change[2] >= 1)
      _require(ok, field, change, allowed)
    object.__setattr__(self, "changes", tuple(
        (int(w), float(t), float(f)) for w, t, f in sorted(changes, key=lambda c: c[1])))

  def validate(self, num_workers: int) -> None:
    for worker, _, _ in self.changes:
      _require(worker < num_workers, "environment.speed.changes", worker,
               f"a worker id must be below num_workers = {num_workers}")

  def slowdowns(self, num_workers: int, seed: int) -> Slowdowns:
    del seed
    self.validate(num_workers)

    def extend(i, starts, factors, until):
      for worker, time, factor in self.changes:
        if worker != i:
          continue
        if time == starts[-1]:
          factors[-1] = factor
        else:
          starts.append(time)
          factors.append(factor)
      return math.inf

    return Slowdowns(num_workers, extend)


# Every speed process by name: ``config.environment.speed = dict(name=..., **arguments)``.
SPEED = {"constant": ConstantSpeed, "straggler_chain": StragglerChain, "steps": StepSlowdown}
