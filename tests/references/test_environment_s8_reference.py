"""The §8 reference itself (tests/references/environment_s8.py) on cases worked by hand.

Each case is N ≤ 2 workers with round batch times; the expected events and jobs are
derived in the comments from the semantics list of the reference's docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.references.environment_s8 import (
  APPLIED,
  APPLY,
  CANCELLED,
  DISCARD,
  DISCARDED,
  FAIL,
  FAILED,
  IN_FLIGHT,
  REJOIN,
  RESTART,
  event_simulation,
  run_cost,
)

NAN = math.nan


def constant(n, *values, width=20):
  return np.array([[v] * width for v in values][:n], np.float64)


def no_slowdown(k, t):
  del k, t
  return 1.0


def job_rows(jobs):
  """(worker, dispatch, start, arrival, end, outcome, step) per job, nan ends as None."""
  return [(j["worker"], j["dispatch"], j["start"], j["arrival"],
           None if math.isnan(j["end"]) else j["end"], j["outcome"], j["step"]) for j in jobs]


def test_failure_mid_job_then_rejoin():
  # w0: 10 per job, down [5, 20); w1: 15 per job. w0's first job (arrival 10) fails at 5;
  # w1 applies at 15 (step 0); w0 rejoins at 20 (step count 1, dispatch 0 kept) and its
  # job ends at 30, tied with w1's second job (15 → 30): w0 first (lower id).
  events, jobs = event_simulation(constant(2, 10.0, 15.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                                  [[(5.0, 20.0)], []], no_slowdown, 3)
  assert events == [(FAIL, 0, 5.0, 0, 0, 0), (APPLY, 1, 15.0, 1, 0, 0),
                    (REJOIN, 0, 20.0, 0, 1, 0), (APPLY, 0, 30.0, 0, 1, 0),
                    (APPLY, 1, 30.0, 2, 2, 1)]
  assert job_rows(jobs) == [
      (0, 0, 0.0, 10.0, 5.0, FAILED, 0), (1, 1, 0.0, 15.0, 15.0, APPLIED, 0),
      (1, 2, 15.0, 30.0, 30.0, APPLIED, 1), (0, 0, 20.0, 30.0, 30.0, APPLIED, 1),
      (0, 3, 30.0, 40.0, None, IN_FLIGHT, 2), (1, 4, 30.0, 45.0, None, IN_FLIGHT, 3)]
  cost = run_cost(jobs, [[(5.0, 20.0)], []], 2, 30.0, 8.0)
  # w0: lost [0, 5), down [5, 20), computing [20, 30); w1: computing [0, 30).
  assert cost["lost"] == 5.0 and cost["down"] == 15.0 and cost["computing"] == 40.0
  assert cost["communicating"] == 0.0 and cost["queue"] == 0.0 and cost["other_idle"] == 0.0
  assert cost["worker_time"] == 60.0 and cost["goodput"] == pytest.approx(40.0 / 60.0)
  # The failed job had not finished computing (10 > 5): nothing computed was lost.
  assert (cost["gradients_computed"], cost["gradients_applied"], cost["gradients_lost"]) \
      == (3, 3, 0)
  assert cost["bytes_pulled"] == 4 * 8.0 and cost["bytes_pushed"] == 3 * 8.0


def test_rejoin_while_every_worker_is_down():
  # Both fail (w1 at 4, w0 at 5); nothing runs until w0 rejoins at 20 (step count 0);
  # its job ends at 30, where w1's rejoin is too (w0 first); w1 rejoins with step count 1.
  down = [[(5.0, 20.0)], [(4.0, 30.0)]]
  events, jobs = event_simulation(constant(2, 10.0, 10.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                                  down, no_slowdown, 2)
  assert events == [(FAIL, 1, 4.0, 1, 0, 0), (FAIL, 0, 5.0, 0, 0, 0),
                    (REJOIN, 0, 20.0, 0, 0, 0), (APPLY, 0, 30.0, 0, 0, 0),
                    (REJOIN, 1, 30.0, 1, 1, 0), (APPLY, 0, 40.0, 2, 1, 0)]
  assert [j["outcome"] for j in jobs] == [FAILED, FAILED, APPLIED, APPLIED, IN_FLIGHT,
                                          IN_FLIGHT]
  cost = run_cost(jobs, down, 2, 40.0, 1.0)
  # w0: lost 5, down 15, computing 20; w1: lost 4, down 26, computing [30, 40) = 10.
  assert (cost["lost"], cost["down"], cost["computing"]) == (9.0, 41.0, 30.0)
  assert cost["other_idle"] == 0.0


def test_master_queue_makes_two_arrivals_wait():
  # handling 5: w0 arrives at 10, handled at 15; w1 arrives at 11, waits for the master
  # (free at 15), handled at 20. Each next job starts at its handling's end: w0's 15 → 25,
  # handled at max(25, 20) + 5 = 30.
  events, jobs = event_simulation(constant(2, 10.0, 11.0), [0.0, 0.0], [0.0, 0.0], 5.0,
                                  [[], []], no_slowdown, 3)
  assert events == [(APPLY, 0, 15.0, 0, 0, 0), (APPLY, 1, 20.0, 1, 1, 1),
                    (APPLY, 0, 30.0, 2, 2, 1)]
  assert job_rows(jobs) == [
      (0, 0, 0.0, 10.0, 15.0, APPLIED, 0), (1, 1, 0.0, 11.0, 20.0, APPLIED, 0),
      (0, 2, 15.0, 25.0, 30.0, APPLIED, 1), (1, 3, 20.0, 31.0, None, IN_FLIGHT, 2),
      (0, 4, 30.0, 40.0, None, IN_FLIGHT, 3)]
  cost = run_cost(jobs, [[], []], 2, 30.0, 1.0)
  # w0: computing 10 + 10, queue 5 + 5; w1: computing 11 + [20, 30) = 21, queue 9.
  assert (cost["computing"], cost["queue"], cost["other_idle"]) == (41.0, 19.0, 0.0)
  assert cost["idle"] == 19.0 and cost["goodput"] == pytest.approx(31.0 / 60.0)


def test_failure_while_queued_loses_nothing():
  # As above, w1 down [12, 18) while its message waits: no event, nothing lost; its next
  # job starts at 20 as before. Down [12, 25) instead: down at 20, so a REJOIN at 25.
  args = (constant(2, 10.0, 11.0), [0.0, 0.0], [0.0, 0.0], 5.0)
  events, jobs = event_simulation(*args, [[], [(12.0, 18.0)]], no_slowdown, 3)
  assert events == [(APPLY, 0, 15.0, 0, 0, 0), (APPLY, 1, 20.0, 1, 1, 1),
                    (APPLY, 0, 30.0, 2, 2, 1)]
  cost = run_cost(jobs, [[], [(12.0, 18.0)]], 2, 30.0, 1.0)
  assert (cost["queue"], cost["down"], cost["lost"]) == (13.0, 6.0, 0.0)
  events, jobs = event_simulation(*args, [[], [(12.0, 25.0)]], no_slowdown, 3)
  assert events == [(APPLY, 0, 15.0, 0, 0, 0), (APPLY, 1, 20.0, 1, 1, 1),
                    (REJOIN, 1, 25.0, 3, 2, 0), (APPLY, 0, 30.0, 2, 2, 1)]
  assert job_rows(jobs)[3] == (1, 3, 25.0, 36.0, None, IN_FLIGHT, 2)


def test_slowdown_step():
  # Worker 1 is 3× slower from time 15: its jobs starting at 0 and 10 take 10, the one
  # starting at 20 takes 30 (the factor is taken at the job's start).
  def slowdown(k, t):
    return 3.0 if k == 1 and t >= 15.0 else 1.0

  events, jobs = event_simulation(constant(2, 10.0, 10.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                                  [[], []], slowdown, 6)
  assert events == [(APPLY, 0, 10.0, 0, 0, 0), (APPLY, 1, 10.0, 1, 1, 1),
                    (APPLY, 0, 20.0, 2, 2, 1), (APPLY, 1, 20.0, 3, 3, 1),
                    (APPLY, 0, 30.0, 4, 4, 1), (APPLY, 0, 40.0, 6, 5, 0)]
  slow = [j for j in jobs if j["worker"] == 1 and j["start"] == 20.0]
  assert slow[0]["compute"] == 30.0 and slow[0]["arrival"] == 50.0


def test_restart_marked_on_a_down_worker_is_ignored():
  # R = 1 marks every worker that has not read since the last apply. w1 (100 per job)
  # fails at 5 and is down until 50: marked after both applies, it is not restarted.
  def rule(step_count, read):
    return step_count - np.asarray(read) >= 1

  draws = constant(2, 10.0, 100.0)
  events, _ = event_simulation(draws, [0.0, 0.0], [0.0, 0.0], 0.0, [[], [(5.0, 50.0)]],
                               no_slowdown, 2, restart_rule=rule)
  assert events == [(FAIL, 1, 5.0, 1, 0, 0), (APPLY, 0, 10.0, 0, 0, 0),
                    (APPLY, 0, 20.0, 2, 1, 0)]
  # Up, the same w1 is restarted at each apply (same dispatch, a new draw).
  events, jobs = event_simulation(draws, [0.0, 0.0], [0.0, 0.0], 0.0, [[], []],
                                  no_slowdown, 2, restart_rule=rule)
  assert events == [(APPLY, 0, 10.0, 0, 0, 0), (RESTART, 1, 10.0, 1, 0, 0),
                    (APPLY, 0, 20.0, 2, 1, 0), (RESTART, 1, 20.0, 1, 1, 0)]
  assert [j["outcome"] for j in jobs if j["worker"] == 1] == [CANCELLED, CANCELLED,
                                                               IN_FLIGHT]


def test_restart_skips_a_queued_worker():
  # handling 5, R = 1: w1's message (arrival 11) is queued when w0 applies at 15, so w1 is
  # not restarted; its apply at 20 has lag 1.
  def rule(step_count, read):
    return step_count - np.asarray(read) >= 1

  events, _ = event_simulation(constant(2, 10.0, 11.0), [0.0, 0.0], [0.0, 0.0], 5.0,
                               [[], []], no_slowdown, 2, restart_rule=rule)
  assert events == [(APPLY, 0, 15.0, 0, 0, 0), (APPLY, 1, 20.0, 1, 1, 1),
                    (RESTART, 0, 20.0, 2, 1, 0)]


def test_discard_keeps_the_count_and_takes_a_new_dispatch():
  # Discard lag ≥ 1: w1's first gradient (lag 1 at 11) is dropped, r_1 = 1, dispatch 3.
  events, _ = event_simulation(constant(2, 10.0, 11.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                               [[], []], no_slowdown, 2, discard_rule=lambda lag: lag >= 1)
  assert events == [(APPLY, 0, 10.0, 0, 0, 0), (DISCARD, 1, 11.0, 1, 1, 1),
                    (APPLY, 0, 20.0, 2, 1, 0)]


def test_links_and_a_failure_during_the_push():
  # N = 1, pull 2, compute 10, push 3: arrival 15; down [13, 20) fails the job in its push
  # (its gradient was computed at 12: computed and lost). Rejoin at 20, arrival 35.
  events, jobs = event_simulation(constant(1, 10.0), [2.0], [3.0], 0.0, [[(13.0, 20.0)]],
                                  no_slowdown, 1)
  assert events == [(FAIL, 0, 13.0, 0, 0, 0), (REJOIN, 0, 20.0, 0, 0, 0),
                    (APPLY, 0, 35.0, 0, 0, 0)]
  assert [(j["start"], j["arrival"], j["outcome"]) for j in jobs] == [
      (0.0, 15.0, FAILED), (20.0, 35.0, APPLIED), (35.0, 50.0, IN_FLIGHT)]
  cost = run_cost(jobs, [[(13.0, 20.0)]], 1, 35.0, 100.0)
  assert (cost["lost"], cost["down"], cost["communicating"], cost["computing"]) == (
      13.0, 7.0, 5.0, 10.0)
  assert (cost["gradients_computed"], cost["gradients_lost"], cost["gradients_applied"],
          cost["gradients_discarded"]) == (2, 1, 1, 0)
  # Pulled: both jobs' pulls (the job at 35 starts at the end: not counted); pushed: one.
  assert (cost["bytes_pulled"], cost["bytes_pushed"]) == (200.0, 100.0)
  assert cost["goodput"] == pytest.approx(10.0 / 35.0)


def test_worker_down_at_time_zero_rejoins_without_a_job():
  # A spot trace can start a worker down: no job, no draw, a REJOIN at u′ with dispatch k.
  events, jobs = event_simulation(constant(2, 10.0, 10.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                                  [[], [(0.0, 15.0)]], no_slowdown, 2)
  assert events == [(APPLY, 0, 10.0, 0, 0, 0), (REJOIN, 1, 15.0, 1, 1, 0),
                    (APPLY, 0, 20.0, 2, 1, 0)]
  assert [(j["worker"], j["start"]) for j in jobs] == [(0, 0.0), (0, 10.0), (1, 15.0),
                                                        (0, 20.0)]


def test_local_steps_sum_their_draws():
  draws = np.arange(1.0, 41.0).reshape(2, 20)
  events, jobs = event_simulation(draws, [0.0, 0.0], [0.0, 0.0], 0.0, [[], []],
                                  no_slowdown, 1, draws_per_job=4)
  assert jobs[0]["compute"] == 1.0 + 2.0 + 3.0 + 4.0
  assert events == [(APPLY, 0, 10.0, 0, 0, 0)]
  assert jobs[2]["compute"] == 5.0 + 6.0 + 7.0 + 8.0


def test_discarded_job_counts_as_lost():
  events, jobs = event_simulation(constant(2, 10.0, 11.0), [0.0, 0.0], [0.0, 0.0], 0.0,
                                  [[], []], no_slowdown, 2, discard_rule=lambda lag: lag >= 1)
  assert [j["outcome"] for j in jobs][:2] == [APPLIED, DISCARDED]
  cost = run_cost(jobs, [[], []], 2, 20.0, 1.0)
  # w0: computing 20; w1: lost 11, then its job from 11 computing to 20 (9).
  assert (cost["computing"], cost["lost"], cost["gradients_discarded"]) == (29.0, 11.0, 1)
