"""Synchronous rounds in an environment (docs/spec.md §8.1–§8.3): links, failures and
slowdowns for SSGD (:class:`~dana_jax.schedule.SynchronousRule`) and m-synchronous SGD
(:class:`~dana_jax.schedule.FastestRule`).

Round r starts at T_r. Its *participants* P are the workers up at T_r (with every
worker down, T_r moves to the first rejoin). Participant i computes c_i = s_i(T_r)·X_i
(its next draw, scaled by its slowdown at the round's start). With the ``slowest``
collective the round lasts

    D(S) = max_(i∈P) pull_i + C(S) + max_(i∈P) push_i,

C(S) the rule's compute time over the participants S still in the round: SSGD's
max_(i∈S) c_i, m-sync's m-th smallest (all of S when fewer than m remain); with
``collective="ring"`` D(S) = C(S) + the ring all-reduce over S (§8.1). A participant
whose down period begins at u with T_r < u < T_r + D(S) — taken in the order of u — fails:
it leaves S (its draw spent, its elapsed time lost) and D is recomputed; the round's
gradients are G_r = |S| (SSGD) or min(m, |S|) (m-sync), the first G_r of the round's G
batches, averaged (*choice*: a shrunk round uses a prefix of its batches). A round that
loses every participant applies nothing and is not a round: the next one starts at its
end. With ``wait_for_all`` the round instead waits for each failed participant: it
rejoins at u′ and redoes its job with its next draw (finishing at u′ + pull + s(u′)·X′ +
push, again subject to failures); no gradient is lost and G_r stays |P| (m-sync: min(m,
|P|)).
"""

from __future__ import annotations

import numpy as np

from dana_jax._checks import require as _require
from dana_jax.schedule.draws import WorkerDraws


def environment_rounds(rule, timing, num_workers, num_rounds, seed, environment, num_params):
  """The rounds of ``rule`` in ``environment`` (module docstring). Returns (durations [R],
  gradients [R], cancelled [R], jobs used [N], computing [R], lost [R], communicating [R],
  down periods per worker clipped to the end)."""
  from dana_jax.schedule.environment_events import _Cursor, _Speed
  from dana_jax.schedule.rounds import FastestRule, SynchronousRule

  _require(isinstance(rule, (SynchronousRule, FastestRule)), "environment",
           type(rule).__name__, "links, failures and slowdowns take SSGD's and m-sync's "
           "rounds (docs/spec.md §8); this round rule's are not built yet")
  n = num_workers
  m = rule.num_gradients if isinstance(rule, FastestRule) else n
  links = environment.links.times(n, num_params, seed)
  ring = environment.links.collective == "ring"
  periods = environment.availability.periods(n, seed)
  wait = bool(getattr(environment.availability, "wait_for_all", False))
  down = [_Cursor(periods, k) for k in range(n)]
  speed = [_Speed(environment.speed.slowdowns(n, seed), k) for k in range(n)]
  draws = WorkerDraws(timing, n, seed)
  next_draw = np.zeros(n, np.int64)

  def draw(i, at):
    x = draws.job(i, int(next_draw[i]))
    next_draw[i] += 1
    if not np.isfinite(x):
      draws.refuse_short(next_draw, f"the trace covers {len(ends)} of the run's "
                         f"{num_rounds} rounds")
    return speed[i].factor(at) * x

  def duration(members, compute):
    if not members:
      return 0.0
    c = np.sort([compute[i] for i in members])
    part = c[-1] if len(c) <= m else c[m - 1]
    if ring:
      return part + links.ring_time(members)
    return max(links.pull[i] for i in participants) + part + max(
        links.push[i] for i in participants)

  ends, gradients, cancelled, computing, lost, communicating = [], [], [], [], [], []
  now = 0.0
  while len(ends) < num_rounds:
    status = [down[i].next_period(now) for i in range(n)]
    participants = [i for i in range(n) if status[i][0] > now]
    if not participants:
      now = min(back for _, back in status)
      continue
    compute = {i: draw(i, now) for i in participants}
    members = list(participants)
    failed_time, failures = 0.0, 0
    fails = sorted((status[i][0], i) for i in participants)
    end = now + duration(members, compute)
    for u, i in fails:
      if u >= end:
        break
      failures += 1
      failed_time += u - now
      if not wait:
        members.remove(i)
        end = now + duration(members, compute)
        continue
      # Rejoin at u′ and redo the job (with its next draw) until it is done.
      while True:
        _, back = down[i].next_period(u)
        compute[i] = draw(i, back)
        done = back + links.pull[i] + compute[i] + links.push[i]
        u, _ = down[i].next_period(back)
        if not back < u < done:
          break
        failures += 1
        failed_time += u - back
      end = max(end, done)
    count = min(m, len(members))
    if count == 0:  # every participant failed: no round; the next starts at the last failure
      now = max(u for u, _ in fails)
      continue
    counted = sorted(compute[i] for i in members)[:count]
    ends.append(end)
    gradients.append(count)
    cancelled.append(len(members) - count + failures)
    computing.append(float(np.sum(counted)))
    # m-sync's backups: their jobs in flight at the round's end.
    lost.append(failed_time + (len(members) - count) * (end - now))
    communicating.append(float(sum(links.pull[i] + links.push[i] for i in members)))
    now = end
  ends = np.asarray(ends)
  durations = np.diff(np.concatenate([[0.0], ends]))
  clipped = []
  for k in range(n):
    found = periods.intervals(k, ends[-1])
    clipped.append(np.minimum(found, ends[-1]) if found.size else found)
  return (durations, np.asarray(gradients, np.int64), np.asarray(cancelled, np.int64),
          next_draw.copy(), np.asarray(computing), np.asarray(lost),
          np.asarray(communicating), tuple(clipped))
