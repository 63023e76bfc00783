"""The asynchronous events in an environment (docs/spec.md §8.1–§8.3): links, a master
queue, failures and rejoins, slowdowns.

One event loop over the workers, each with exactly one pending event (ties between equal
times go to the lower worker id, as in §1):

* worker k's job starts at t₀ with its next draw X (the sum of H draws for local SGD):
  it computes c = s_k(t₀)·X (its slowdown at the job's start, §8.3) and its message
  arrives at a = t₀ + pull_k + c + push_k (§8.1);
* if k is down at t₀ (u ≤ t₀ < u′ for one of its down periods [u, u′), §8.2) no job
  starts: k *rejoins* at u′ (a REJOIN event: it reads the current parameters,
  r_k = the step count, its batch kept) and its job starts then;
* if a down period begins during the job (t₀ < u < a) the job is lost: a FAIL event at
  u (nothing applied, the batch stays k's), then the REJOIN at u′;
* without a master queue the arrival is applied (or discarded) at a; with one
  (``master_bandwidth``) arrivals are handled one at a time in arrival order, the
  k-th's handling ending at h = max(a, end of the previous handling) + q·ρ·P / b_m, and it
  is applied (or discarded) at h, where k's next job starts;
* after every apply, the workers a restart rule marks restart — only those with a job in
  flight (a down worker has none; a queued message has arrived and cannot be cancelled).

Everything depends only on the environment's seed, so the events are computed before
training, like §1's. :func:`environment_events` is called by
:func:`dana_jax.schedule.make_schedule` when an environment changes the times.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math

import numpy as np

from dana_jax._checks import require as _require
from dana_jax.schedule.draws import WorkerDraws
from dana_jax.schedule.kinds import (
  APPLY,
  DISCARD,
  FAIL,
  JOB_APPLIED,
  JOB_CANCELLED,
  JOB_DISCARDED,
  JOB_FAILED,
  JOB_IN_FLIGHT,
  REJOIN,
  RESTART,
)

# What a worker's pending event is.
_DONE, _ARRIVE, _FAIL, _REJOIN = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True, eq=False)
class JobRecords:
  """Every job of an asynchronous run, one entry per job start, in start order
  (docs/spec.md §8.5 counts cost from them).

  Attributes:
    worker, dispatch: int32 [J]: whose job, and the batch it computes on (§1).
    start: float64 [J], t₀.
    pull, compute, push: float64 [J], the durations of its three parts (compute is
      s_k(t₀)·X).
    arrival: float64 [J], a = t₀ + pull + compute + push.
    end: float64 [J], when the job ended: its apply or discard (after the master queue),
      its cancellation (a restart) or its failure; NaN for a job still in flight (or
      queued) when the run ends at its last apply.
    outcome: int8 [J], ``JOB_APPLIED``, ``JOB_DISCARDED``, ``JOB_CANCELLED``,
      ``JOB_FAILED`` or ``JOB_IN_FLIGHT``.
  """

  worker: np.ndarray
  dispatch: np.ndarray
  start: np.ndarray
  pull: np.ndarray
  compute: np.ndarray
  push: np.ndarray
  arrival: np.ndarray
  end: np.ndarray
  outcome: np.ndarray

  @property
  def num_jobs(self) -> int:
    return int(self.worker.shape[0])

  def count(self, outcome: int) -> int:
    return int(np.sum(self.outcome == outcome))


class _Cursor:
  """One worker's down periods read in time order (queries never go back in time)."""

  def __init__(self, periods, worker):
    self.periods, self.worker = periods, worker
    self.known = np.zeros((0, 2))
    self.until = 0.0
    self.index = 0

  def next_period(self, time: float) -> tuple[float, float]:
    """The first down period [u, u′) with u′ > ``time``; (inf, inf) if none."""
    while True:
      while self.index < len(self.known) and self.known[self.index][1] <= time:
        self.index += 1
      if self.index < len(self.known):
        return self.known[self.index]
      if self.until == math.inf:
        return math.inf, math.inf
      self.until = max(2.0 * self.until, time + 1.0, 1024.0)
      if self.until > 1e300:
        self.until = math.inf
        return math.inf, math.inf
      self.known = [tuple(map(float, p)) for p in
                    self.periods.intervals(self.worker, self.until)]


class _Speed:
  """One worker's slowdown s(t), read in time order."""

  def __init__(self, slowdowns, worker):
    self.slowdowns, self.worker = slowdowns, worker
    self.starts, self.factors, self.until = [0.0], [1.0], -1.0

  def factor(self, time: float) -> float:
    if time > self.until:
      self.until = max(2.0 * time, time + 1024.0)
      starts, factors = self.slowdowns.segments(self.worker, self.until)
      self.starts, self.factors = starts.tolist(), factors.tolist()
    return self.factors[bisect.bisect_right(self.starts, time) - 1]


def environment_events(timing, num_workers, num_steps, seed, environment, num_params,
                       restart_rule, discard_rule):
  """The events of ``num_steps`` apply events in ``environment`` (the module docstring).

  Returns (kind, worker, time, dispatch, step, lag, jobs used [N], :class:`JobRecords`,
  down periods per worker clipped to the run's end).
  """
  n = num_workers
  links = environment.links.times(n, num_params, seed)
  pull, push = links.pull.tolist(), links.push.tolist()
  handling, queue = float(links.handling), bool(links.queue)
  periods = environment.availability.periods(n, seed)
  down = [_Cursor(periods, k) for k in range(n)]
  slowdowns = environment.speed.slowdowns(n, seed)
  speed = [None if environment.speed.is_default else _Speed(slowdowns, k) for k in range(n)]
  draws = WorkerDraws(timing, n, seed)
  draws.upto(max(2, math.ceil(1.25 * num_steps / n) + 8))

  next_job = [0] * n
  dispatch = list(range(n))
  read = [0] * n
  job_of = [-1] * n  # the worker's current job record (-1: none)
  in_flight = [False] * n  # a job that can still be cancelled
  version = [0] * n
  heap: list = []
  jobs: list[list] = []  # [worker, dispatch, start, pull, compute, push, arrival, end, outcome]
  events = []  # (kind, worker, time, dispatch, step, lag)
  state = {"t": 0, "next_dispatch": n, "master_free": 0.0}

  def pend(k, time, what):
    version[k] += 1
    heapq.heappush(heap, (time, k, version[k], what))

  def start_job(k, t0):
    u, u_back = down[k].next_period(t0)
    if u <= t0:  # down: no job; it rejoins at u′
      in_flight[k], job_of[k] = False, -1
      pend(k, u_back, _REJOIN)
      return
    x = draws.job(k, next_job[k])
    next_job[k] += 1
    compute = x if speed[k] is None else speed[k].factor(t0) * x
    arrival = t0 + pull[k] + compute + push[k]
    job_of[k] = len(jobs)
    jobs.append([k, dispatch[k], t0, pull[k], compute, push[k], arrival, math.nan,
                 JOB_IN_FLIGHT])
    in_flight[k] = True
    if u < arrival:
      pend(k, u, _FAIL)
    else:
      pend(k, arrival, _ARRIVE if queue else _DONE)

  def end_job(k, time, outcome):
    record = jobs[job_of[k]]
    record[7], record[8] = time, outcome
    job_of[k], in_flight[k] = -1, False

  for k in range(n):
    start_job(k, 0.0)
  while state["t"] < num_steps:
    if not heap or not np.isfinite(heap[0][0]):
      draws.refuse_short(next_job, f"the trace covers {state['t']} of the run's "
                         f"{num_steps} master steps")
      raise RuntimeError("no event can happen")  # pragma: no cover (refuse_short raises)
    now, k, ver, what = heapq.heappop(heap)
    if ver != version[k]:
      continue
    t = state["t"]
    if what == _ARRIVE:
      state["master_free"] = max(now, state["master_free"]) + handling
      in_flight[k] = False
      pend(k, state["master_free"], _DONE)
      continue
    if what == _FAIL:
      events.append((FAIL, k, now, dispatch[k], t, 0))
      end_job(k, now, JOB_FAILED)
      _, u_back = down[k].next_period(now)
      pend(k, u_back, _REJOIN)
      continue
    if what == _REJOIN:
      events.append((REJOIN, k, now, dispatch[k], t, 0))
      read[k] = t
      start_job(k, now)
      continue
    lag = t - read[k]
    if discard_rule(lag):
      events.append((DISCARD, k, now, dispatch[k], t, lag))
      end_job(k, now, JOB_DISCARDED)
      read[k], dispatch[k] = t, state["next_dispatch"]
      state["next_dispatch"] += 1
      start_job(k, now)
      continue
    events.append((APPLY, k, now, dispatch[k], t, lag))
    end_job(k, now, JOB_APPLIED)
    read[k], dispatch[k] = t + 1, state["next_dispatch"]
    state["next_dispatch"] += 1
    start_job(k, now)
    marked = np.asarray(restart_rule(t + 1, np.asarray(read, np.int64)), bool)
    _require(marked.shape == (n,), "restart_rule", marked.shape,
             f"must return one bool per worker ({n})")
    for j in np.flatnonzero(marked):
      j = int(j)
      if not in_flight[j]:
        continue
      events.append((RESTART, j, now, dispatch[j], t, 0))
      end_job(j, now, JOB_CANCELLED)
      read[j] = t + 1
      start_job(j, now)
    state["t"] = t + 1
  kind, worker, time, disp, step, lag = (np.asarray(c) for c in zip(*events, strict=True))
  end = float(time[kind == APPLY][-1])
  records = np.asarray(jobs, np.float64).reshape(-1, 9)
  job_worker = records[:, 0].astype(np.int64)
  starts = records[:, 2]
  used = np.bincount(job_worker[starts < end], minlength=n).astype(np.int64)
  if draws.limit is not None and np.any(used > draws.drawn):
    short = np.flatnonzero(used > draws.drawn)
    missing = min(starts[job_worker == i][draws.drawn[i]] for i in short)
    covered = int(np.sum(time[kind == APPLY] <= missing))
    draws.refuse_short(used, f"the trace covers {covered} of the run's {num_steps} "
                       "master steps")
  job_records = JobRecords(
      worker=records[:, 0].astype(np.int32), dispatch=records[:, 1].astype(np.int32),
      start=starts, pull=records[:, 3], compute=records[:, 4], push=records[:, 5],
      arrival=records[:, 6], end=records[:, 7], outcome=records[:, 8].astype(np.int8))
  clipped = []
  for k in range(n):
    found = periods.intervals(k, end)
    clipped.append(np.minimum(found, end) if found.size else found)
  return (kind.astype(np.int8), worker.astype(np.int32), time.astype(np.float64),
          disp.astype(np.int32), step.astype(np.int32), lag.astype(np.int32), used,
          job_records, tuple(clipped))
