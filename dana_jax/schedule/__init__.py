"""The training-independent event schedule of a simulation (docs/spec.md §1, §6.0).

Which worker's gradient reaches the parameter server when depends only on the
timing model (:mod:`dana_jax.timing`) and its seed, never on training, so it is
computed here, once, in plain numpy, and handed to the engine as arrays. One module
per part, each found by name:

* :mod:`~dana_jax.schedule.draws`: every worker's batch-time draws
  (:class:`WorkerDraws`) and the checks of a schedule's inputs.
* :mod:`~dana_jax.schedule.events`: the asynchronous schedule (:class:`Schedule`,
  :func:`make_schedule`): apply, restart and discard events, their blocks, and the
  event rules :class:`RestartAtDelay` and :class:`DiscardAtDelay`.
* :mod:`~dana_jax.schedule.rounds`: synchronous rounds (:class:`Rounds`,
  :func:`make_rounds`) and every round rule (:class:`SynchronousRule`,
  :class:`FastestRule`, :class:`RennalaRule`).
* :mod:`~dana_jax.schedule.speedup_model`: the Monte-Carlo speedup model of ASGD and
  SSGD (:func:`estimate_speedup`, the GA paper's Figure 12).

The timing models are :mod:`dana_jax.timing`'s; their names here
(``dana_jax.schedule.homogeneous`` etc.) are deprecated aliases.
"""

from __future__ import annotations

import warnings

from dana_jax.schedule.draws import STREAM_BYTES, WorkerDraws, check_count, validate_schedule_args
from dana_jax.schedule.environment_events import JobRecords
from dana_jax.schedule.events import (
  BLOCK_BYTES,
  EVENT_BYTES,
  RESTART_EVENT_BYTES,
  DiscardAtDelay,
  DiscardRule,
  RestartAtDelay,
  RestartRule,
  Schedule,
  completion_order,
  lags_from_workers,
  make_schedule,
  partition_blocks,
  schedule_nbytes,
)
from dana_jax.schedule.kinds import (
  APPLY,
  DISCARD,
  FAIL,
  JOB_APPLIED,
  JOB_CANCELLED,
  JOB_DISCARDED,
  JOB_FAILED,
  JOB_IN_FLIGHT,
  JOB_OUTCOMES,
  NOOP,
  REJOIN,
  RESTART,
)
from dana_jax.schedule.rounds import (
  FastestRule,
  RennalaRule,
  Rounds,
  RoundTimes,
  SynchronousRule,
  make_rounds,
  one_draw_per_round,
  rounds_nbytes,
  synchronous_times,
)
from dana_jax.schedule.speedup_model import estimate_speedup

__all__ = [
    "APPLY", "BLOCK_BYTES", "DISCARD", "EVENT_BYTES", "FAIL", "JOB_APPLIED", "JOB_CANCELLED",
    "JOB_DISCARDED", "JOB_FAILED", "JOB_IN_FLIGHT", "JOB_OUTCOMES", "NOOP", "REJOIN", "RESTART",
    "RESTART_EVENT_BYTES", "JobRecords",
    "STREAM_BYTES", "DiscardAtDelay", "DiscardRule", "FastestRule", "RennalaRule",
    "RestartAtDelay", "RestartRule", "RoundTimes", "Rounds", "Schedule", "SynchronousRule",
    "WorkerDraws", "check_count", "completion_order", "estimate_speedup", "lags_from_workers",
    "make_rounds", "make_schedule", "one_draw_per_round", "partition_blocks", "rounds_nbytes",
    "schedule_nbytes", "synchronous_times", "validate_schedule_args",
]

# Formerly re-exported from dana_jax.timing; deprecated here.
_TIMING_NAMES = ("MEAN_BATCH_TIME", "TIMING_MODELS", "ConstantTiming", "GammaTiming",
                 "TimingModel", "TraceTiming", "heterogeneous", "homogeneous", "make_timing")


def __getattr__(name: str):
  """The timing models' names (``homogeneous``, ``TraceTiming``, …): deprecated aliases
  of :mod:`dana_jax.timing`'s, which is where they live."""
  if name in _TIMING_NAMES:
    warnings.warn(f"dana_jax.schedule.{name} is deprecated: use dana_jax.timing.{name}.",
                  DeprecationWarning, stacklevel=2)
    from dana_jax import timing
    return getattr(timing, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
