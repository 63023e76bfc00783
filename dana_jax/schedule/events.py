"""The asynchronous event schedule (docs/spec.md §1, §6.0): apply, restart and discard
events, and their blocks.

A sequence of *events*, each for one worker. An *apply* event is a master step t
(arriving worker k_t, lag τ_t, simulated time s_t, the dispatch number of its batch);
a *restart* event (made by a ``restart_rule``, e.g. Ringmaster's
:class:`RestartAtDelay`) applies nothing: the worker's job is cancelled, it reads
again, and its new job — same batch — starts then, with its next batch-time draw. A
*discard* event (a ``discard_rule``, e.g. :class:`DiscardAtDelay`) is an arrival that
is not applied. Events are partitioned into *blocks*: runs of consecutive events whose
workers are all distinct (capped at ``block_size``). Every gradient applied inside a
block was read before it, which is what lets the engine compute a block's gradients
together (docs/semantics.md, blocks).

The event rules of the methods after the GA paper (spec §6.2):

* :class:`RestartAtDelay`: Ringmaster ASGD's cancellation — after every master step
  t, each worker whose job has reached delay t + 1 − r_k ≥ R is restarted, so no
  applied gradient is R steps stale.
* :class:`DiscardAtDelay`: Ringmaster without cancellation — a gradient that arrives
  with τ ≥ R is discarded; the worker reads again.

References:
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), §5 and Appendix.
  Maranjyan, Tyurin, Richtárik, "Ringmaster ASGD: The First Asynchronous SGD
  with Optimal Time Complexity", ICML 2025 (arXiv:2501.16168).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.schedule.draws import STREAM_BYTES, WorkerDraws, check_count, validate_schedule_args
from dana_jax.schedule.environment_events import JobRecords, environment_events
from dana_jax.schedule.kinds import APPLY, DISCARD, FAIL, RESTART
from dana_jax.timing import TimingModel

# ``restart_rule(step_count, read_step) -> bool [N]``: called after every apply
# event with the master step count after it and every worker's r_k; the workers
# it marks are restarted, in worker-id order (spec §6.0).
RestartRule = Callable[[int, np.ndarray], np.ndarray]

# ``discard_rule(lag) -> bool``: called for every arriving gradient with its lag τ;
# a marked gradient is discarded (a DISCARD event, not a master step).
DiscardRule = Callable[[int], bool]


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
  """The events of an asynchronous simulation of T master steps (spec §1, §6.0).

  Per master step (apply event) t:

  Attributes:
    num_workers: N.
    worker: int32 [T], arriving worker k_t.
    lag: int32 [T], τ_t = t − r_k (apply events only: τ counts master steps).
    time: float64 [T], simulated completion time s_t.

  Per event e (apply and restart events, in order; without restarts the same
  as the per-step arrays):

  Attributes:
    event_kind: int8 [E], :data:`APPLY`, :data:`RESTART`, :data:`DISCARD`, or in an
      environment with failures (docs/spec.md §8.2) ``FAIL`` and ``REJOIN``.
    event_worker: int32 [E].
    event_time: float64 [E].
    event_dispatch: int32 [E], the dispatch number of the event's job (spec §1
      data: which batch of the stream it computes on; a restarted job keeps it).
    event_step: int32 [E], the master step the event belongs to: t for an
      apply event, for a restart event the apply event that caused it, for a
      discard event the next apply event (t = the step count when it arrived).
    block_starts: int64 [num_blocks + 1], block b is events
      ``block_starts[b] .. block_starts[b + 1] - 1``.
    block_size: the cap K used to make the blocks.
    jobs_used: int64 [N], the jobs (draws of the timing model) of each worker the run
      uses: those that start before its last apply event — a job still in flight then
      is one, since its time says it ends later (:class:`WorkerDraws`).
    jobs: every job's :class:`~dana_jax.schedule.environment_events.JobRecords` when an
      environment changed the times (docs/spec.md §8), else None.
    down: each worker's down periods [M_k, 2], clipped to the run's end (None: always up).
  """

  num_workers: int
  worker: np.ndarray
  lag: np.ndarray
  time: np.ndarray
  event_kind: np.ndarray
  event_worker: np.ndarray
  event_time: np.ndarray
  event_dispatch: np.ndarray
  event_step: np.ndarray
  block_starts: np.ndarray
  block_size: int
  jobs_used: np.ndarray | None = None
  jobs: JobRecords | None = None
  down: tuple | None = None

  @property
  def num_steps(self) -> int:
    return int(self.worker.shape[0])

  @property
  def num_events(self) -> int:
    return int(self.event_kind.shape[0])

  @property
  def num_blocks(self) -> int:
    return int(self.block_starts.shape[0] - 1)

  @property
  def num_restarts(self) -> int:
    return int(np.sum(self.event_kind == RESTART))

  @property
  def num_discards(self) -> int:
    return int(np.sum(self.event_kind == DISCARD))

  @property
  def num_failures(self) -> int:
    return int(np.sum(self.event_kind == FAIL))

  def cancelled_jobs(self, start: int, stop: int) -> int:
    """Jobs cancelled (restarts), discarded or lost to failures among the events of steps
    ``start..stop-1``."""
    first, last = self.events_of_steps(start, stop)
    kinds = self.event_kind[first:last]
    return int(np.sum((kinds == RESTART) | (kinds == DISCARD) | (kinds == FAIL)))

  def events_of_steps(self, start: int, stop: int) -> tuple[int, int]:
    """The event range ``[first, last)`` of master steps ``start .. stop - 1``."""
    first, last = np.searchsorted(self.event_step, [start, stop], side="left")
    return int(first), int(last)

  def padded_blocks(self, start_block: int = 0, stop_block: int | None = None):
    """Blocks ``start_block..stop_block-1`` as padded [nb, K] event indices and mask.

    Padded entries hold event index -1 and mask False.
    """
    stop_block = self.num_blocks if stop_block is None else stop_block
    starts = self.block_starts[start_block:stop_block]
    lengths = self.block_starts[start_block + 1:stop_block + 1] - starts
    offsets = np.arange(self.block_size)
    mask = offsets[None, :] < lengths[:, None]
    steps = np.where(mask, starts[:, None] + offsets[None, :], -1)
    return steps.astype(np.int32), mask


def completion_order(timing: TimingModel, num_workers: int, num_steps: int, seed: int):
  """Workers, times and jobs used [N] of the first ``num_steps`` completions, ties to the
  lower id. Worker i uses 1 + its completions before the last one: the jobs that start
  before the end (its next job starts at its last completion)."""
  draws = WorkerDraws(timing, num_workers, seed)
  width = max(1, math.ceil(1.25 * num_steps / num_workers) + 8)
  while True:
    times = np.cumsum(draws.upto(width), axis=1)
    width = times.shape[1]
    if width * num_workers >= num_steps:
      flat_t = times.ravel()
      flat_w = np.repeat(np.arange(num_workers), width)
      order = np.lexsort((flat_w, flat_t))[:num_steps]
      end = flat_t[order[-1]]
      # A job not drawn yet ends strictly after its worker's last drawn one.
      if np.all(times[:, -1] >= end):
        break
    width *= 2
  used = 1 + np.sum(times < end, axis=1)
  if draws.limit is not None and np.any(used > draws.drawn):
    missing = [times[i, draws.drawn[i] - 1] if draws.drawn[i] else 0.0
               for i in np.flatnonzero(used > draws.drawn)]
    covered = int(np.searchsorted(flat_t[order], min(missing), side="right"))
    draws.refuse_short(used, f"the trace covers {covered} of the run's {num_steps} "
                       "master steps")
  return flat_w[order].astype(np.int32), flat_t[order], used


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


def _arrival_dispatches(worker: np.ndarray, lag: np.ndarray, num_workers: int) -> np.ndarray:
  """Dispatch numbers without restarts: worker k's first job has dispatch k; a job read
  at master step r − 1 (r = t − τ_t) has dispatch N + r − 1."""
  read = np.arange(worker.shape[0]) - lag
  return np.where(read == 0, worker, num_workers + read - 1).astype(np.int32)


def _events_with_restarts(timing, num_workers, num_steps, seed, restart_rule, discard_rule):
  """spec §6.0 event by event: the earliest completion applies (ties: lower id) unless
  ``discard_rule`` marks it (then the worker reads again on its next batch and nothing is
  applied); after an apply, the workers ``restart_rule`` marks restart at that time,
  keeping their batch. Each new job takes its worker's next draw; the jobs used are those
  that start before the last apply event."""
  n = num_workers
  restart_rule = restart_rule or (lambda step_count, read: np.zeros(n, bool))
  discard_rule = discard_rule or (lambda lag: False)
  draws = WorkerDraws(timing, n, seed)
  draws.upto(max(2, math.ceil(1.25 * num_steps / n) + 8))
  next_job = np.zeros(n, np.int64)  # each worker's next draw
  starts = [[] for _ in range(n)]  # when each worker's jobs started
  completion = np.empty(n)
  dispatch = np.arange(n, dtype=np.int64)
  read = np.zeros(n, np.int64)
  events = []  # (kind, worker, time, dispatch, step, lag)

  def start_next_job(k, now):
    completion[k] = now + draws.job(k, int(next_job[k]))
    next_job[k] += 1
    starts[k].append(now)

  for k in range(n):
    start_next_job(k, 0.0)
  t, next_dispatch = 0, n
  while t < num_steps:
    k = int(np.argmin(completion))  # the first minimum: ties go to the lower id
    now = completion[k]
    if not np.isfinite(now):  # every job in flight is past a finite model's jobs
      draws.refuse_short(next_job, f"the trace covers {t} of the run's {num_steps} "
                         "master steps")
    if discard_rule(int(t - read[k])):
      events.append((DISCARD, k, now, dispatch[k], t, t - read[k]))
      read[k], dispatch[k] = t, next_dispatch
      next_dispatch += 1
      start_next_job(k, now)
      continue
    events.append((APPLY, k, now, dispatch[k], t, t - read[k]))
    read[k], dispatch[k] = t + 1, next_dispatch
    next_dispatch += 1
    start_next_job(k, now)
    marked = np.asarray(restart_rule(t + 1, read.copy()), bool)
    _require(marked.shape == (n,), "restart_rule", marked.shape,
             f"must return one bool per worker ({n})")
    for j in np.flatnonzero(marked):
      events.append((RESTART, int(j), now, dispatch[j], t, 0))
      read[j] = t + 1
      start_next_job(int(j), now)
    t += 1
  kind, worker, time, disp, step, lag = (np.asarray(c) for c in zip(*events, strict=True))
  end = time[kind == APPLY][-1]
  used = np.asarray([np.sum(np.asarray(s) < end) for s in starts], np.int64)
  if draws.limit is not None and np.any(used > draws.drawn):
    missing = min(starts[i][draws.drawn[i]] for i in np.flatnonzero(used > draws.drawn))
    covered = int(np.sum(time[kind == APPLY] <= missing))
    draws.refuse_short(used, f"the trace covers {covered} of the run's {num_steps} "
                       "master steps")
  return kind.astype(np.int8), worker.astype(np.int32), time.astype(np.float64), \
      disp.astype(np.int32), step.astype(np.int32), lag.astype(np.int32), used


def partition_blocks(worker: np.ndarray, block_size: int,
                     boundaries: Sequence[int] = ()) -> np.ndarray:
  """Greedy runs of distinct workers, capped at ``block_size``.

  A block also ends at every index in ``boundaries`` (chunk ends), so a host
  chunk always consists of whole blocks.

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
                  block_size: int = 1, boundaries: Sequence[int] = (),
                  restart_rule: RestartRule | None = None,
                  discard_rule: DiscardRule | None = None, environment=None,
                  num_params: int | None = None) -> Schedule:
  """Computes the events of ``num_steps`` master steps (spec §1, §6.0).

  Args:
    timing: a timing model (``homogeneous()``, ``heterogeneous()``,
      ``ConstantTiming()``, ``TraceTiming(times)``).
    num_workers: N ≥ 1.
    num_steps: T ≥ 1 master steps (apply events).
    seed: seeds the timing model's random streams.
    block_size: K ≥ 1, the largest number of gradients computed together.
    boundaries: master steps at which a block must end (chunk ends).
    restart_rule: optional :data:`RestartRule`; None: no restart events.
    discard_rule: optional :data:`DiscardRule`; None: every arrival is applied.
    environment: optional :class:`dana_jax.environment.Environment` whose links,
      availability and speed parts change the times (docs/spec.md §8.1–§8.3; its
      ``compute`` part is not used here: ``timing`` is the compute model). None, or every
      part at its default: §1's events, bit for bit.
    num_params: P, the values a message carries (needed when links have a finite
      bandwidth).

  Returns:
    A :class:`Schedule`.
  """
  validate_schedule_args(timing, num_workers, num_steps, block_size)
  _check_seed_and_rules(seed, boundaries, restart_rule, discard_rule)
  jobs = down = None
  if environment is not None and not environment.times_default():
    environment.validate(num_workers)
    _require(num_params is not None and is_int(num_params, 1), "num_params", num_params,
             "need the model's parameter count (an integer ≥ 1) for the links' transfer times")
    kind, ev_worker, ev_time, dispatch, ev_step, ev_lag, used, jobs, down = \
        environment_events(timing, num_workers, num_steps, seed, environment, num_params,
                           restart_rule or (lambda step_count, read: np.zeros(num_workers, bool)),
                           discard_rule or (lambda lag: False))
    applied = kind == APPLY
    worker, time, lag = ev_worker[applied], ev_time[applied], ev_lag[applied]
    if environment.availability.is_default:
      down = None
  elif restart_rule is None and discard_rule is None:
    worker, time, used = completion_order(timing, num_workers, num_steps, seed)
    lag = lags_from_workers(worker, num_workers)
    steps = np.arange(num_steps, dtype=np.int32)
    kind, ev_worker, ev_time, ev_step = np.zeros(num_steps, np.int8), worker, time, steps
    dispatch = _arrival_dispatches(worker, lag, num_workers)
  else:
    kind, ev_worker, ev_time, dispatch, ev_step, ev_lag, used = _events_with_restarts(
        timing, num_workers, num_steps, seed, restart_rule, discard_rule)
    applied = kind == APPLY
    worker, time, lag = ev_worker[applied], ev_time[applied], ev_lag[applied]
  event_bounds = np.searchsorted(ev_step, [b for b in boundaries if 0 < b < num_steps])
  starts = partition_blocks(ev_worker, block_size, event_bounds.tolist())
  return Schedule(num_workers=num_workers, worker=worker, lag=lag, time=time,
                  event_kind=kind, event_worker=ev_worker, event_time=ev_time,
                  event_dispatch=dispatch, event_step=ev_step, block_starts=starts,
                  block_size=block_size, jobs_used=used, jobs=jobs, down=down)


def _check_seed_and_rules(seed, boundaries, restart_rule, discard_rule) -> None:
  _require(is_int(seed), "seed", seed, "need an integer")
  _require(np.iterable(boundaries) and not isinstance(boundaries, str)
           and all(is_int(b) for b in boundaries), "boundaries", boundaries,
           "need a sequence of master steps (integers)")
  for field, rule in (("restart_rule", restart_rule), ("discard_rule", discard_rule)):
    _require(rule is None or callable(rule), field, type(rule).__name__,
             "need a callable or None")


@dataclasses.dataclass(frozen=True)
class RestartAtDelay:
  """Restart every worker whose job has reached delay ``max_delay`` (spec §6.2).

  A :data:`dana_jax.schedule.RestartRule`: called after each apply event with
  the step count t + 1 and every worker's read step r_k.
  """

  max_delay: int

  def __post_init__(self):
    check_count("algorithm_options.max_delay", self.max_delay,
                 meaning="R, the delay at which a job is cancelled")

  def __call__(self, step_count: int, read_step: np.ndarray) -> np.ndarray:
    return step_count - np.asarray(read_step) >= self.max_delay


@dataclasses.dataclass(frozen=True)
class DiscardAtDelay:
  """Discard an arriving gradient of delay τ ≥ ``max_delay`` (spec §6.2, ``cancel=False``)."""

  max_delay: int

  def __post_init__(self):
    check_count("algorithm_options.max_delay", self.max_delay,
                 meaning="R, the delay from which a gradient is discarded")

  def __call__(self, lag: int) -> bool:
    return lag >= self.max_delay


# --------------------------------------------------------------------------
# Size: what a schedule holds on the host, known before it is built.
# --------------------------------------------------------------------------

# Bytes per apply event of the arrays a Schedule keeps (worker, lag, step, dispatch: int32;
# time: float64; kind: int8; block start: int64), and per event of the Python list of
# event tuples that a schedule with restart or discard events is built from.
EVENT_BYTES = 29
BLOCK_BYTES = 44  # a block start: a Python int in a list, then an int64
RESTART_EVENT_BYTES = 150


def schedule_nbytes(num_workers: int, num_steps: int, *, block_size: int = 1,
                    draws_per_job: int = 1, restarts: bool = False) -> int:
  """A lower bound on the host bytes :func:`make_schedule` holds at its peak.

  The N + 1 numpy streams; while completions are ordered, the completion times of
  M = N · (⌈1.25 T / N⌉ + 8) jobs (H draws each, float64) with their worker ids and
  sort order (int64); then (the streams freed) the event arrays (``EVENT_BYTES`` per
  event, and per block ``BLOCK_BYTES``). With restart or discard rules the events are
  first a Python list of tuples (``RESTART_EVENT_BYTES`` each). Computed from the sizes
  alone, so a run whose schedule cannot fit is refused before any of it exists.
  """
  n, t = int(num_workers), int(num_steps)
  jobs = n * (math.ceil(1.25 * t / n) + 8)
  streams = (n + 1) * STREAM_BYTES
  if restarts:
    building = 8 * jobs * draws_per_job + RESTART_EVENT_BYTES * t
  else:
    building = 8 * jobs * draws_per_job + 16 * jobs
  kept = EVENT_BYTES * t + BLOCK_BYTES * math.ceil(t / max(1, int(block_size)))
  return max(streams + building, kept)  # the streams are gone when the events are kept
