"""docs/spec.md §8.1–8.3 and §8.5, the asynchronous events in an environment, and their cost.

A literal transcription of the contract's "Semantics" list (/work/notes/ENV27.md) and of
spec §8.1 (links, the master queue), §8.2 (failures, rejoins) and §8.3 (slowdowns), written
as the most obvious loop: a list of pending items (time, worker, what), one per worker; the
minimum (time, worker) is taken each iteration and does what the semantics says.

Its inputs are the environment's *resolved* random parts, so it is independent of the
engine's event loop and of how the parts are drawn:

* ``draws`` [N, J]: worker k's batch times X_k0, X_k1, … (a job takes the next H of them,
  summed; ``dana_jax.schedule.draws.WorkerDraws(timing, N, seed).upto(J)``);
* ``pull``, ``push`` [N]: ℓ_k + q·ρ·P / b_k of each direction (``Links.times``);
* ``handling``: q·ρ·P / b_m of a master that receives one message at a time (0.0: none);
* ``down``: per worker a list of down intervals [u, u′) (``DownPeriods.intervals``);
* ``slowdown(k, t)``: s_k(t) ≥ 1 (``Slowdowns.factor``).

The semantics (ties between items at equal times: lower worker id first):

1. A job of k starting at t0 takes its next draw X (H draws summed): compute c = s_k(t0)·X,
   arrival a = t0 + pull_k + c + push_k (added left to right).
2. k down at t0 (u ≤ t0 < u′): no job; a REJOIN at u′ (k reads the current parameters,
   r_k = the step count, same dispatch) starts its job at u′.
3. A down interval with t0 < u < a: a FAIL at u (the job is lost, nothing applied, the
   dispatch kept), then a REJOIN at u′.
4. No master queue: at a, an APPLY (or a DISCARD if ``discard_rule(lag)``). With one: the
   arrivals are handled in arrival order, h = max(a, master free) + handling; the APPLY or
   DISCARD is at h and k's next job starts at h (rule 2 if k is down then). A down period
   that starts while k's message is queued loses nothing and makes no event.
5. After each APPLY, ``restart_rule(t + 1, r)`` marks workers; only those with a job in
   flight (not down, not queued) restart: RESTART at that time, the job cancelled, r_k =
   t + 1, a new job with the same dispatch and the next draw.
6. Dispatch numbers: k's first is k; then N, N + 1, … given at each APPLY and DISCARD.
7. lag: APPLY and DISCARD t − r_k; RESTART, FAIL, REJOIN 0. step: APPLY t; RESTART the
   APPLY's t; DISCARD, FAIL, REJOIN the step count at their time.
8. The loop stops after the T-th APPLY (its own consequences included: k's next job, the
   restarts it marks).

After an APPLY r_k = t + 1; after a DISCARD r_k = t (§6.2, as ``discard_at``).
"""

from __future__ import annotations

import math

import numpy as np

APPLY, RESTART, NOOP, DISCARD, FAIL, REJOIN = 0, 1, 2, 3, 4, 5
APPLIED, DISCARDED, CANCELLED, FAILED, IN_FLIGHT = 0, 1, 2, 3, 4

JOB_FIELDS = ("worker", "dispatch", "start", "pull", "compute", "push", "arrival", "end",
              "outcome", "step")


def down_at(intervals, time):
  """The down interval (u, u′) of ``intervals`` with u ≤ time < u′, or None."""
  for u, back in intervals:
    if u <= time < back:
      return (u, back)
  return None


def first_down_after(intervals, time):
  """The first down interval (u, u′) with u > time, or None."""
  for u, back in intervals:
    if u > time:
      return (u, back)
  return None


def event_simulation(draws, pull, push, handling, down, slowdown, num_steps, *,
                     restart_rule=None, discard_rule=None, draws_per_job=1,
                     down_until=math.inf):
  """The events and jobs of ``num_steps`` master steps (the module docstring's rules).

  Args:
    draws: [N, J] batch times; a job takes the worker's next ``draws_per_job`` of them.
    pull, push: [N] link times.
    handling: the master's time per message; 0.0: no master queue.
    down: per worker a list of down intervals (u, u′), in order.
    slowdown: ``slowdown(k, t)`` → s_k(t).
    num_steps: T, the APPLY events of the run.
    restart_rule: ``(step_count, read[N]) -> bool[N]`` or None.
    discard_rule: ``(lag) -> bool`` or None.
    draws_per_job: H.
    down_until: the time up to which ``down`` is known; the run must end before it.

  Returns:
    (events, jobs): events a list of (kind, worker, time, dispatch, step, lag); jobs a list
    of dicts with :data:`JOB_FIELDS`, one per job start in start order (``end`` nan and
    ``outcome`` IN_FLIGHT for a job still running or queued after the T-th APPLY; ``step``
    is r_k at the job's start).
  """
  draws = np.asarray(draws, np.float64)
  n = draws.shape[0]
  h_draws = int(draws_per_job)
  queue = handling > 0
  down = [list(map(tuple, d)) for d in down]
  next_draw = [0] * n
  read = [0] * n
  dispatch = list(range(n))
  pending = [None] * n  # per worker: (time, what, job index or down interval)
  jobs, events = [], []
  master_free = 0.0
  t, next_dispatch = 0, n

  def start_job(k, t0):
    """Rule 1–3: k's job from t0, or a REJOIN at u′ if k is down at t0."""
    interval = down_at(down[k], t0)
    if interval is not None:
      pending[k] = (interval[1], "rejoin", interval)
      return
    if next_draw[k] + h_draws > draws.shape[1]:
      raise IndexError(f"worker {k} needs more than {draws.shape[1]} draws")
    x = float(np.sum(draws[k, next_draw[k]:next_draw[k] + h_draws]))
    next_draw[k] += h_draws
    c = slowdown(k, t0) * x
    a = t0 + pull[k] + c + push[k]
    jobs.append(dict(worker=k, dispatch=dispatch[k], start=t0, pull=float(pull[k]),
                     compute=c, push=float(push[k]), arrival=a, end=math.nan,
                     outcome=IN_FLIGHT, step=read[k]))
    fail = first_down_after(down[k], t0)
    if fail is not None and fail[0] < a:
      pending[k] = (fail[0], "fail", len(jobs) - 1)
    else:
      pending[k] = (a, "arrive", len(jobs) - 1)

  for k in range(n):
    start_job(k, 0.0)
  while t < num_steps:
    k = min(range(n), key=lambda i: (pending[i][0], i))
    now, what, ref = pending[k]
    if not math.isfinite(now):
      raise ValueError("every worker is down for ever")
    if now >= down_until:
      raise ValueError(f"the run passed down_until={down_until}")
    if what == "rejoin":
      events.append((REJOIN, k, now, dispatch[k], t, 0))
      read[k] = t
      start_job(k, now)
      continue
    if what == "fail":
      jobs[ref]["end"], jobs[ref]["outcome"] = now, FAILED
      events.append((FAIL, k, now, dispatch[k], t, 0))
      interval = down_at(down[k], now)
      pending[k] = (interval[1], "rejoin", interval)
      continue
    if what == "arrive" and queue:
      master_free = max(now, master_free) + handling
      pending[k] = (master_free, "handled", ref)
      continue
    # An arrival without a queue, or the end of its handling: APPLY or DISCARD at now.
    lag = t - read[k]
    jobs[ref]["end"] = now
    if discard_rule is not None and discard_rule(lag):
      jobs[ref]["outcome"] = DISCARDED
      events.append((DISCARD, k, now, dispatch[k], t, lag))
      read[k], dispatch[k] = t, next_dispatch
      next_dispatch += 1
      start_job(k, now)
      continue
    jobs[ref]["outcome"] = APPLIED
    events.append((APPLY, k, now, dispatch[k], t, lag))
    read[k], dispatch[k] = t + 1, next_dispatch
    next_dispatch += 1
    start_job(k, now)
    if restart_rule is not None:
      marked = np.asarray(restart_rule(t + 1, np.array(read)), bool)
      for j in np.flatnonzero(marked):
        j = int(j)
        if pending[j][1] not in ("arrive", "fail"):  # down or queued: not in flight
          continue
        jobs[pending[j][2]]["end"], jobs[pending[j][2]]["outcome"] = now, CANCELLED
        events.append((RESTART, j, now, dispatch[j], t, 0))
        read[j] = t + 1
        start_job(j, now)
    t += 1
  return events, jobs


def events_array(events):
  """The events as arrays: kind, worker, time, dispatch, step, lag."""
  kind, worker, time, disp, step, lag = (np.asarray(c) for c in zip(*events, strict=True))
  return dict(kind=kind, worker=worker, time=time.astype(np.float64), dispatch=disp,
              step=step, lag=lag)


def jobs_array(jobs):
  """The job records as arrays, one per field of :data:`JOB_FIELDS`."""
  return {f: np.asarray([j[f] for j in jobs]) for f in JOB_FIELDS}


def measure(start, stop, intervals=()):
  """|[start, stop) ∖ ∪ intervals| (0 if stop ≤ start); ``intervals`` disjoint, sorted."""
  if not stop > start:
    return 0.0
  total = stop - start
  for u, back in intervals:
    lo, hi = max(u, start), min(back, stop)
    if hi > lo:
      total -= hi - lo
  return total


def run_cost(jobs, down, num_workers, elapsed, message_bytes, gradients_per_job=1):
  """docs/spec.md §8.5's cost of one asynchronous run, from its job records.

  E = ``elapsed``, the time of the last APPLY. Worker k's time [0, E] is split into parts
  that never overlap, so together they are N·E:

  * down: |D_k ∩ [0, E]|, D_k the union of k's down intervals. Down time comes first: the
    parts below are measured on [0, E] ∖ D_k (only a queued message can overlap D_k).
  * For a job of k with start s < E (jobs starting at E or later count nowhere), pull p,
    compute c, push q, arrival a, end e (nan while in flight: read E), its phases are
    pull [s, s + p), compute [s + p, s + p + c), push [s + p + c, a), queue [a, e); each is
    clipped to [s, min(e, E)) and has D_k removed.
    - APPLIED or IN_FLIGHT: computing += compute phase; communicating += pull and push
      phases; queue += queue phase (the master's queue wait and handling).
    - DISCARDED, CANCELLED, FAILED: lost += |[s, min(e, E)) ∖ D_k| (its whole elapsed time).
  * other idle: N·E − computing − communicating − queue − down − lost (every moment of a
    worker not in a job and not down; 0 in the asynchronous events up to rounding, since
    a worker's next job starts when its last one ends or when it comes back).

  idle (the spec's "round waits, down, master queue") = queue + down + other idle.

  Gradients (counted over jobs with s < E; "done" = s + p + c ≤ min(e, E)):
    computed: done jobs; applied: APPLIED; discarded: DISCARDED; lost: CANCELLED or FAILED
    jobs that were done (a gradient computed and never delivered); in flight: IN_FLIGHT jobs
    that were done. So computed = applied + discarded + lost + in flight. Each job counts
    ``gradients_per_job`` (H: a job of H local steps computes H gradients).
  Bytes: pulled = q·ρ·P × (jobs with s + p ≤ min(e, E)); pushed = q·ρ·P × (jobs with
    a ≤ min(e, E)).
  goodput = Σ c over APPLIED jobs / (N·E).

  Args:
    jobs: the job records (:func:`event_simulation`'s list of dicts).
    down: per worker a list of down intervals (u, u′).
    num_workers: N.
    elapsed: E.
    message_bytes: q·ρ·P.
    gradients_per_job: H.

  Returns:
    A dict with the keys named above (``computing``, ``communicating``, ``queue``,
    ``down``, ``lost``, ``other_idle``, ``idle``, ``worker_time`` = N·E,
    ``gradients_computed``, ``gradients_applied``, ``gradients_discarded``,
    ``gradients_lost``, ``gradients_in_flight``, ``bytes_pulled``, ``bytes_pushed``,
    ``goodput``, ``elapsed``).
  """
  e_run = float(elapsed)
  clipped_down = [[(u, min(back, e_run)) for u, back in d if u < e_run] for d in down]
  out = dict(computing=0.0, communicating=0.0, queue=0.0, lost=0.0,
             down=sum(b - u for d in clipped_down for u, b in d),
             gradients_computed=0, gradients_applied=0, gradients_discarded=0,
             gradients_lost=0, gradients_in_flight=0, bytes_pulled=0.0, bytes_pushed=0.0)
  applied_compute = 0.0
  for job in jobs:
    s = job["start"]
    if not s < e_run:
      continue
    d = clipped_down[job["worker"]]
    e = e_run if math.isnan(job["end"]) else min(job["end"], e_run)
    p_end = s + job["pull"]
    c_end = p_end + job["compute"]
    a = job["arrival"]
    outcome = job["outcome"]
    done = c_end <= e
    if outcome in (APPLIED, IN_FLIGHT):
      out["communicating"] += measure(s, min(p_end, e), d) + measure(c_end, min(a, e), d)
      out["computing"] += measure(p_end, min(c_end, e), d)
      out["queue"] += measure(a, e, d)
    else:
      out["lost"] += measure(s, e, d)
    h = int(gradients_per_job)
    out["gradients_computed"] += h * done
    out["gradients_applied"] += h * (outcome == APPLIED)
    out["gradients_discarded"] += h * (outcome == DISCARDED)
    out["gradients_lost"] += h * (done and outcome in (CANCELLED, FAILED))
    out["gradients_in_flight"] += h * (done and outcome == IN_FLIGHT)
    out["bytes_pulled"] += message_bytes * (p_end <= e)
    out["bytes_pushed"] += message_bytes * (a <= e)
    if outcome == APPLIED:
      applied_compute += job["compute"]
  total = num_workers * e_run
  out["worker_time"] = total
  out["other_idle"] = total - out["computing"] - out["communicating"] - out["queue"] \
      - out["down"] - out["lost"]
  out["idle"] = out["queue"] + out["down"] + out["other_idle"]
  out["goodput"] = applied_compute / total
  out["elapsed"] = e_run
  return out
