"""What a run costs in machine time (docs/spec.md §8.5).

Every run's N workers are reserved for its whole elapsed simulated time E (the time of
its last master step), so it holds N·E of worker-time. That is split, per worker and
without overlap, into

* **computing**: the compute time c of its jobs that were applied (or are still in
  flight at the end, up to E);
* **communicating**: their pull and push times (§8.1);
* **lost**: the whole elapsed time, start to end, of its jobs that were cancelled
  (restarts, §6.0), failed (§8.2) or discarded (§6.2) — and, for rounds, of the jobs in
  flight when a round ends (every part above has the worker's down time removed: down
  time is counted once, below);
* **idle**: the rest — time queued at the master (``idle_queue``), down (``idle_down``),
  and otherwise waiting (``idle_wait``: a synchronous round's wait for its slowest
  participant; ~0 asynchronously).

An asynchronous job's span [t₀, end] is pull, compute, push, then the master queue (the
wait between its arrival and its apply); a job in flight at E is cut at E in that order.
Gradients (× H for local SGD: a job of H steps counts H) are *computed* when the job's
compute finished by its end (or by E), *applied*, *discarded*, or *lost* (computed, then
failed or cancelled: never delivered), so computed = applied + discarded + lost + those in
flight at E whose compute had finished. Bytes: q·ρ·P for every pull finished and every
push that arrived.
**Goodput** = (compute time of the applied gradients) / (N·E). **Worker-time to a time t**
is the worker-time the run held up to t: N·t minus the time workers were down before t
(a machine that is down is not paid for; spot instances).
"""

from __future__ import annotations

import numpy as np

from dana_jax.schedule.kinds import (
  JOB_APPLIED,
  JOB_CANCELLED,
  JOB_DISCARDED,
  JOB_FAILED,
  JOB_IN_FLIGHT,
)

COST_FIELDS = ("elapsed", "worker_time", "computing", "communicating", "lost", "idle",
               "idle_queue", "idle_down", "idle_wait", "gradients_computed",
               "gradients_applied", "gradients_discarded", "gradients_lost", "bytes_pulled",
               "bytes_pushed", "goodput")


def _up_time(down, worker, elapsed):
  """``up(a, b)``: per job, |[a, b) ∖ D_k| for its worker k's down periods D_k (None:
  never down), from the cumulative down time F_k(t) = |D_k ∩ [0, t]| (a worker's periods
  are disjoint and in order, so F_k is piecewise linear: np.interp)."""
  if down is None:
    return lambda a, b: np.maximum(b - a, 0.0)

  def up(a, b):
    out = np.maximum(b - a, 0.0)
    for k, d in enumerate(down):
      d = np.asarray(d, np.float64).reshape(-1, 2)
      d = d[d[:, 0] < elapsed]
      mine = worker == k
      if not d.size or not mine.any():
        continue
      x = d.ravel()
      y = np.concatenate([[0.0], np.cumsum(d[:, 1] - d[:, 0])])
      y = np.stack([y[:-1], y[1:]], axis=1).ravel()
      f = lambda t, x=x, y=y: np.interp(t, x, y, left=0.0, right=y[-1])
      out[mine] -= np.maximum(f(b[mine]) - f(a[mine]), 0.0)
    return np.maximum(out, 0.0)
  return up


def job_cost(jobs, num_workers: int, elapsed: float, *, down=None, message_bytes=None,
             gradients_per_job: int = 1) -> dict:
  """The cost (module docstring) of an asynchronous run from its
  :class:`~dana_jax.schedule.JobRecords`, ending at ``elapsed``.

  Args:
    jobs: the run's JobRecords.
    num_workers: N.
    elapsed: E, the time of the last master step.
    down: each worker's down periods [M, 2] clipped to E (None: always up).
    message_bytes: q·ρ·P (None: bytes not counted, reported as None).
    gradients_per_job: H (local SGD), batches per job; or one H_i per worker (DyLU).
  """
  e = float(elapsed)
  started = jobs.start < e
  start = jobs.start[started]
  end = np.where(np.isnan(jobs.end[started]), e, np.minimum(jobs.end[started], e))
  outcome = jobs.outcome[started]
  worker = jobs.worker[started]
  pull, compute, push = jobs.pull[started], jobs.compute[started], jobs.push[started]
  kept = (outcome == JOB_APPLIED) | (outcome == JOB_IN_FLIGHT)
  # Phases pull [s, s+p), compute [s+p, s+p+c), push [s+p+c, s+p+c+q), queue [.., end),
  # each cut at the job's end (or E) and with the worker's down time removed: down time
  # is counted once, as idle_down (only a message waiting at the master can overlap it).
  pull_end = np.minimum(start + pull, end)
  compute_end = np.minimum(start + pull + compute, end)
  push_end = np.minimum(start + pull + compute + push, end)
  up = _up_time(down, worker, e)
  pulled = up(start, pull_end)
  computed = up(pull_end, compute_end)
  pushed = up(compute_end, push_end)
  queued = up(push_end, end)
  lost = float(np.sum((pulled + computed + pushed + queued)[~kept]))
  computing = float(np.sum(computed[kept]))
  communicating = float(np.sum(pulled[kept] + pushed[kept]))
  idle_queue = float(np.sum(queued[kept]))
  idle_down = 0.0 if down is None else float(
      sum(np.sum(np.minimum(d[:, 1], e) - np.minimum(d[:, 0], e)) for d in down))
  total = num_workers * e
  idle_wait = max(0.0, total - computing - communicating - lost - idle_queue - idle_down)
  per_job = np.broadcast_to(np.asarray(gradients_per_job, np.int64), (num_workers,))
  h = per_job[worker]
  # Compared as times (as the schedule added them), not durations: no rounding.
  finished_compute = start + pull + compute <= end
  count = lambda o: int(np.sum(h[outcome == o]))
  applied = outcome == JOB_APPLIED
  out = {
      "elapsed": e, "worker_time": total, "computing": computing,
      "communicating": communicating, "lost": lost,
      "idle": idle_queue + idle_down + idle_wait, "idle_queue": idle_queue,
      "idle_down": idle_down, "idle_wait": idle_wait,
      "gradients_computed": int(np.sum(h[finished_compute])),
      "gradients_applied": count(JOB_APPLIED), "gradients_discarded": count(JOB_DISCARDED),
      # A gradient computed and never delivered: failed or cancelled after its compute.
      "gradients_lost": int(np.sum(h[finished_compute & ((outcome == JOB_FAILED)
                                                        | (outcome == JOB_CANCELLED))])),
      "bytes_pulled": None, "bytes_pushed": None,
      "goodput": float(np.sum(compute[applied])) / total if total > 0 else 0.0,
  }
  if message_bytes is not None:
    arrived = (jobs.arrival[started] <= end) & (outcome != JOB_FAILED) & (
        outcome != JOB_CANCELLED)
    out["bytes_pulled"] = float(message_bytes) * int(np.sum(start + pull <= end))
    out["bytes_pushed"] = float(message_bytes) * int(np.sum(arrived))
  return out


def rounds_cost(rounds, num_steps: int | None = None, *, message_bytes=None) -> dict | None:
  """The cost of synchronous rounds (module docstring), or None when the round rule does
  not give its compute times (:class:`~dana_jax.schedule.RoundTimes`)."""
  if rounds.computing is None or rounds.lost is None:
    return None
  r = rounds.num_steps if num_steps is None else int(num_steps)
  n, g = rounds.num_workers, rounds.gradients_per_round
  e = float(rounds.time[r - 1])
  computing, lost = float(np.sum(rounds.computing[:r])), float(np.sum(rounds.lost[:r]))
  communicating = (0.0 if rounds.communicating is None
                   else float(np.sum(rounds.communicating[:r])))
  idle_down = 0.0 if rounds.down is None else float(
      sum(np.sum(d[:, 1] - d[:, 0]) for d in rounds.down))
  total = n * e
  applied = g * r if rounds.gradients is None else int(np.sum(rounds.gradients[:r]))
  cancelled = int(np.sum(rounds.cancelled[:r]))
  wait = max(0.0, total - computing - communicating - lost - idle_down)
  out = {
      "elapsed": e, "worker_time": total, "computing": computing,
      "communicating": communicating, "lost": lost, "idle": wait + idle_down,
      "idle_queue": 0.0, "idle_down": idle_down, "idle_wait": wait,
      # A round's cancelled or failed job was still in flight when the round ended: its
      # time is lost, and it is not counted as a lost gradient (RoundTimes does not say
      # whether its compute had finished: with links, one cancelled during its push had).
      "gradients_computed": applied, "gradients_applied": applied, "gradients_discarded": 0,
      "gradients_lost": 0, "bytes_pulled": None, "bytes_pushed": None,
      "goodput": computing / total if total > 0 else 0.0,
  }
  if message_bytes is not None:  # every counted participant pulls θ_r and pushes
    out["bytes_pulled"] = float(message_bytes) * (applied + cancelled)
    out["bytes_pushed"] = float(message_bytes) * applied
  return out


def worker_time_to(time: float, num_workers: int, down=None) -> float:
  """The worker-time a run held up to ``time``: N·time minus the workers' down time
  before it (module docstring)."""
  held = num_workers * float(time)
  if down is not None:
    for d in down:
      held -= float(np.sum(np.clip(np.minimum(d[:, 1], time) - d[:, 0], 0.0, None)))
  return held


def run_cost(spec, schedule, replica: int = 0, num_steps: int | None = None) -> dict | None:
  """The cost of replica ``replica``'s run of ``spec`` over its first ``num_steps`` master
  steps (all of the schedule's: None), from its schedule (a :class:`~dana_jax.RunSpec`'s;
  ``dana_jax.simulate``'s ``Result.schedules``). For a schedule of §1 (no environment
  part changed the times) the job records are rebuilt from the same draws."""
  from dana_jax.engine import plan
  from dana_jax.environment import Environment
  from dana_jax.schedule.environment_events import environment_events

  message_bytes = None
  if spec.num_params is not None:
    links = spec.environment.links
    message_bytes = float(links.bytes_per_value) * float(links.compression) * spec.num_params
  if spec.synchronous:
    return rounds_cost(schedule, num_steps, message_bytes=message_bytes)
  steps = schedule.num_steps if num_steps is None else int(num_steps)
  jobs, down = schedule.jobs, schedule.down
  if jobs is None or steps < schedule.num_steps:
    timing = plan.schedule_timing(spec, spec.job_steps[replica])
    environment = spec.environment if jobs is not None else Environment(compute=timing)
    out = environment_events(
        timing, spec.num_workers, steps, spec.timing_seeds[replica], environment,
        spec.num_params or 1,
        spec.restart_rule or (lambda count, read: np.zeros(spec.num_workers, bool)),
        spec.discard_rule or (lambda lag: False))
    jobs, down = out[7], (out[8] if schedule.down is not None else None)
  h = spec.job_steps[replica]
  h = spec.program.batches_per_job if h is None else np.asarray(h)
  return job_cost(jobs, spec.num_workers, float(schedule.time[steps - 1]), down=down,
                  message_bytes=message_bytes, gradients_per_job=h)
