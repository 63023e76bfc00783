"""The asynchronous schedule in an environment (docs/spec.md §8.1–8.3) against the literal
reference tests/references/environment_s8.py, event for event and job for job.

The reference gets only the resolved random parts — the timing model's draws
(``WorkerDraws``), the link times (``Links.times``), the down intervals
(``DownPeriods.intervals``) and the slowdowns (``Slowdowns.factor``), each drawn afresh
from the same seed — and runs its own loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dana_jax.environment import (
  DownPeriods,
  Links,
  SpotTrace,
  StepSlowdown,
  StragglerChain,
  UpDown,
  make_environment,
)
from dana_jax.schedule import DiscardAtDelay, RestartAtDelay, make_schedule
from dana_jax.schedule.draws import WorkerDraws
from dana_jax.timing import JobTiming, TraceTiming, heterogeneous, homogeneous
from tests.references import environment_s8 as ref

KIND_NAMES = {0: "APPLY", 1: "RESTART", 2: "NOOP", 3: "DISCARD", 4: "FAIL", 5: "REJOIN"}


def reference(timing, n, num_steps, seed, environment, num_params, *, restart_rule=None,
              discard_rule=None, draws_per_job=1):
  """The reference's events and jobs, with the parts resolved from ``environment``;
  widens the draws and the down horizon until the run fits in them."""
  links = environment.links.times(n, num_params, seed)
  width, horizon = 4 * (num_steps // n + 8), 200.0 * (num_steps // n + 8) * draws_per_job
  while True:
    draws = WorkerDraws(timing, n, seed).upto(width * draws_per_job)
    periods = environment.availability.periods(n, seed)
    down = [periods.intervals(k, horizon).tolist() for k in range(n)]
    slowdown = environment.speed.slowdowns(n, seed).factor
    try:
      events, jobs = ref.event_simulation(
          draws, links.pull, links.push, links.handling if links.queue else 0.0, down,
          slowdown, num_steps, restart_rule=restart_rule, discard_rule=discard_rule,
          draws_per_job=draws_per_job, down_until=horizon)
    except IndexError:
      width *= 2
      continue
    except ValueError as e:
      if "down_until" not in str(e):
        raise
      horizon *= 4
      continue
    return events, jobs, down, links


def first_difference(expected, got, names):
  """A one-line description of the first row where two lists of tuples differ."""
  for i, (e, g) in enumerate(zip(expected, got, strict=False)):
    if not all(_same(a, b) for a, b in zip(e, g, strict=True)):
      return (f"row {i}: expected {dict(zip(names, e, strict=True))}, "
              f"got {dict(zip(names, g, strict=True))}")
  if len(expected) != len(got):
    return f"lengths differ: expected {len(expected)}, got {len(got)}"
  return None


def _same(a, b):
  if isinstance(a, float) or isinstance(b, float):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-9 * max(
        1.0, abs(a))
  return a == b


def check_against_reference(timing, n, num_steps, seed, environment, num_params, *,
                            restart_rule=None, discard_rule=None, draws_per_job=1,
                            engine_timing=None):
  """make_schedule's events and jobs equal the reference's."""
  events, jobs, down, _ = reference(timing, n, num_steps, seed, environment, num_params,
                                    restart_rule=restart_rule, discard_rule=discard_rule,
                                    draws_per_job=draws_per_job)
  sched = make_schedule(engine_timing or timing, n, num_steps, seed=seed,
                        restart_rule=restart_rule, discard_rule=discard_rule,
                        environment=environment, num_params=num_params)
  names = ("kind", "worker", "time", "dispatch", "step")
  want = [(KIND_NAMES[e[0]], e[1], e[2], e[3], e[4]) for e in events]
  got = [(KIND_NAMES[int(k)], int(w), float(t), int(d), int(s)) for k, w, t, d, s in zip(
      sched.event_kind, sched.event_worker, sched.event_time, sched.event_dispatch,
      sched.event_step, strict=True)]
  problem = first_difference(want, got, names)
  assert problem is None, f"events: {problem}"
  applied = [e for e in events if e[0] == ref.APPLY]
  np.testing.assert_array_equal(sched.lag, [e[5] for e in applied], err_msg="apply lags")
  np.testing.assert_array_equal(sched.worker, [e[1] for e in applied])
  job_names = ("worker", "dispatch", "start", "pull", "compute", "push", "arrival", "end",
               "outcome")
  want_jobs = [tuple(j[f] for f in job_names) for j in jobs]
  assert sched.jobs is not None, "Schedule.jobs is None in a non-default environment"
  got_jobs = list(zip(*(getattr(sched.jobs, f).tolist() for f in job_names), strict=True))
  problem = first_difference(want_jobs, got_jobs, job_names)
  assert problem is None, f"jobs: {problem}"
  return sched, events, jobs, down


def assert_same_schedule(a, b):
  for field in ("worker", "lag", "time", "event_kind", "event_worker", "event_time",
                "event_dispatch", "event_step", "block_starts", "jobs_used"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


SPOT = {"metadata": {"gap_seconds": 1.0},
        "data": [2, 3, 3, 1, 0, 3, 2, 3, 1, 3, 3, 2, 0, 0, 3, 1]}


@pytest.mark.parametrize("n", [1, 3, 8])
def test_per_worker_links(n):
  latency = [1.0 + 2.0 * i for i in range(n)]
  bandwidth = [1e3 * (1 + i % 3) for i in range(n)]
  links = Links(latency=latency, bandwidth=bandwidth, push_latency=[0.5] * n)
  check_against_reference(homogeneous(), n, 40, 3, make_environment(links=links), 2000)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_master_queue(n):
  links = Links(latency=2.0, bandwidth=1e5, master_bandwidth=300.0)  # handling 4000/300
  sched, events, jobs, _ = check_against_reference(
      heterogeneous(), n, 50, 1, make_environment(links=links), 1000)
  if n == 8:  # the queue is used: some message waited beyond its handling
    waits = [j["end"] - j["arrival"] for j in jobs if j["outcome"] == ref.APPLIED]
    assert max(waits) > 4000 / 300 + 1e-9


@pytest.mark.parametrize("n", [1, 3, 8])
def test_up_down_failures(n):
  env = make_environment(availability=UpDown(mtbf=400.0, mttr=150.0))
  sched, events, _, down = check_against_reference(homogeneous(), n, 60, 5, env, 10)
  kinds = [e[0] for e in events]
  assert kinds.count(ref.FAIL) >= 2 and kinds.count(ref.REJOIN) >= 2
  end = sched.time[-1]
  for k in range(n):  # Schedule.down: the down intervals clipped to [0, end]
    want = np.asarray([(u, min(b, end)) for u, b in down[k] if u < end]).reshape(-1, 2)
    np.testing.assert_allclose(np.asarray(sched.down[k]).reshape(-1, 2), want,
                               err_msg=f"down of worker {k}")


def test_up_down_per_worker_weibull_with_links():
  env = make_environment(links=Links(latency=[3.0, 1.0, 0.0], bandwidth=5e3),
                         availability=UpDown(mtbf=[300.0, 2000.0, math.inf], mttr=[100.0,
                                             400.0, 50.0], weibull_shape=1.5))
  check_against_reference(heterogeneous(), 3, 60, 2, env, 1000)


@pytest.mark.parametrize("n", [3, 8])
def test_spot_trace(n):
  env = make_environment(availability=SpotTrace(SPOT, time_per_second=100.0))
  sched, events, _, _ = check_against_reference(homogeneous(), n, 60, 0, env, 10)
  assert ref.REJOIN in [e[0] for e in events]


@pytest.mark.parametrize("n", [1, 3, 8])
def test_straggler_chain(n):
  env = make_environment(speed=StragglerChain(normal_time=300.0, slow_time=200.0,
                                              factor=4.0))
  _, _, jobs, _ = check_against_reference(homogeneous(), n, 60, 4, env, 10)
  draws = WorkerDraws(homogeneous(), n, 4).upto(64)
  counts = [0] * n
  slowed = 0
  for j in jobs:
    slowed += j["compute"] > draws[j["worker"], counts[j["worker"]]] * 1.5
    counts[j["worker"]] += 1
  assert slowed >= 1


def test_step_slowdown():
  env = make_environment(speed=StepSlowdown([(1, 300.0, 3.0), (2, 500.0, 2.0),
                                             (1, 900.0, 1.0)]))
  check_against_reference(homogeneous(), 3, 60, 6, env, 10)


@pytest.mark.parametrize("n", [3, 8])
def test_restart_at_delay_with_failures(n):
  env = make_environment(availability=UpDown(mtbf=500.0, mttr=200.0))
  _, events, _, _ = check_against_reference(heterogeneous(), n, 60, 7, env, 10,
                                            restart_rule=RestartAtDelay(2))
  kinds = [e[0] for e in events]
  assert ref.RESTART in kinds and ref.FAIL in kinds


@pytest.mark.parametrize("n", [3, 8])
def test_discard_at_delay_with_failures(n):
  env = make_environment(availability=UpDown(mtbf=500.0, mttr=200.0))
  _, events, _, _ = check_against_reference(heterogeneous(), n, 60, 8, env, 10,
                                            discard_rule=DiscardAtDelay(2))
  kinds = [e[0] for e in events]
  assert ref.DISCARD in kinds and ref.FAIL in kinds


def test_restart_with_master_queue_and_failures():
  env = make_environment(links=Links(latency=1.0, bandwidth=1e4, master_bandwidth=400.0),
                         availability=UpDown(mtbf=600.0, mttr=100.0))
  check_against_reference(homogeneous(), 8, 60, 9, env, 1000, restart_rule=RestartAtDelay(3))


def test_discard_with_master_queue_and_failures():
  env = make_environment(links=Links(latency=1.0, bandwidth=1e4, master_bandwidth=400.0),
                         availability=UpDown(mtbf=600.0, mttr=100.0))
  check_against_reference(homogeneous(), 8, 60, 10, env, 1000,
                          discard_rule=DiscardAtDelay(3))


@pytest.mark.parametrize("n", [1, 3])
def test_local_steps(n):
  env = make_environment(links=Links(latency=5.0, bandwidth=2e3),
                         availability=UpDown(mtbf=2000.0, mttr=300.0),
                         speed=StepSlowdown([(0, 1000.0, 2.0)]))
  check_against_reference(homogeneous(), n, 30, 11, env, 1000, draws_per_job=4,
                          engine_timing=JobTiming(homogeneous(), 4))


def test_everything_at_once():
  env = make_environment(
      links=Links(latency=[1.0 * i for i in range(8)], bandwidth=2e4, master_bandwidth=1e3),
      availability=UpDown(mtbf=700.0, mttr=150.0),
      speed=StragglerChain(normal_time=500.0, slow_time=300.0, factor=3.0))
  check_against_reference(heterogeneous(), 8, 80, 12, env, 1000,
                          restart_rule=RestartAtDelay(4))


@pytest.mark.parametrize("n", [1, 3, 8])
def test_free_environment_reference_is_section_1(n):
  """The reference with every part free is today's §1 schedule (checks the reference)."""
  env = make_environment()
  events, _, _, _ = reference(homogeneous(), n, 50, 13, env, 10)
  sched = make_schedule(homogeneous(), n, 50, seed=13)
  np.testing.assert_array_equal([e[1] for e in events], sched.event_worker)
  np.testing.assert_array_equal([e[2] for e in events], sched.event_time)
  np.testing.assert_array_equal([e[3] for e in events], sched.event_dispatch)
  np.testing.assert_array_equal([e[5] for e in events], sched.lag)


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("rules", ["none", "restart", "discard"])
def test_every_part_default_is_today_bit_for_bit(n, rules):
  rule = dict(none={}, restart=dict(restart_rule=RestartAtDelay(2)),
              discard=dict(discard_rule=DiscardAtDelay(2)))[rules]
  today = make_schedule(heterogeneous(), n, 60, seed=14, block_size=4, **rule)
  for env in (make_environment(), make_environment(links=Links(latency=0.0)),
              make_environment(availability=dict(name="always"),
                               speed=dict(name="constant"))):
    with_env = make_schedule(heterogeneous(), n, 60, seed=14, block_size=4,
                             environment=env, num_params=100, **rule)
    assert_same_schedule(today, with_env)
  none = make_schedule(heterogeneous(), n, 60, seed=14, block_size=4, environment=None,
                       **rule)
  assert_same_schedule(today, none)


class FixedDown:
  """A user-defined availability process: the given down intervals per worker."""

  is_default = False

  def __init__(self, intervals):
    self.given = [list(map(tuple, d)) for d in intervals]

  def validate(self, num_workers):
    assert num_workers == len(self.given)

  def periods(self, num_workers, seed):
    del seed

    def extend(worker, periods, until):
      del until
      periods[:] = self.given[worker]
      return math.inf

    return DownPeriods(num_workers, extend)


def trace(*rows, width=20):
  return TraceTiming(np.array([[float(v)] * width for v in rows]))


# The hand-worked cases of tests/references/test_environment_s8_reference.py, through the
# engine: ties, a failure while queued, a queued or down worker that a restart rule marks,
# a worker down at time 0. (timing, environment parts, P, T, rules)
HAND_CASES = {
    "failure_mid_job": (trace(10, 15), dict(availability=FixedDown([[(5, 20)], []])), 1, 3,
                        {}),
    "all_down": (trace(10, 10), dict(availability=FixedDown([[(5, 20)], [(4, 30)]])), 1, 2,
                 {}),
    # P = 5 values of 4 bytes, master bandwidth 4: handling 5.
    "master_queue": (trace(10, 11), dict(links=Links(master_bandwidth=4.0)), 5, 3, {}),
    "failure_while_queued": (trace(10, 11), dict(links=Links(master_bandwidth=4.0),
                                                 availability=FixedDown([[], [(12, 18)]])),
                             5, 3, {}),
    "down_at_queue_end": (trace(10, 11), dict(links=Links(master_bandwidth=4.0),
                                              availability=FixedDown([[], [(12, 25)]])),
                          5, 3, {}),
    "slowdown_step": (trace(10, 10), dict(speed=StepSlowdown([(1, 15.0, 3.0)])), 1, 6, {}),
    "restart_down_ignored": (trace(10, 100), dict(availability=FixedDown([[], [(5, 50)]])),
                             1, 2, dict(restart_rule=RestartAtDelay(1))),
    "restart_queued_skipped": (trace(10, 11), dict(links=Links(master_bandwidth=4.0)), 5, 2,
                               dict(restart_rule=RestartAtDelay(1))),
    "push_failure": (trace(10), dict(links=Links(pull_latency=2.0, push_latency=3.0),
                                     availability=FixedDown([[(13, 20)]])), 1, 1, {}),
    "down_at_zero": (trace(10, 10), dict(availability=FixedDown([[], [(0, 15)]])), 1, 2, {}),
    "discard": (trace(10, 11), dict(links=Links(latency=1.0)), 1, 2,
                dict(discard_rule=DiscardAtDelay(1))),
    # A failure exactly at the arrival (u = a, not t0 < u < a): applied, then a rejoin.
    "failure_at_arrival": (trace(10, 15), dict(availability=FixedDown([[(10, 12)], []])), 1,
                           3, {}),
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_worked_cases(case):
  timing, parts, num_params, num_steps, rules = HAND_CASES[case]
  n = timing.batch_times.shape[0]
  check_against_reference(timing, n, num_steps, 0, make_environment(**parts), num_params,
                          **rules)
