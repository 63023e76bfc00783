"""docs/spec.md §8.5's cost of an asynchronous run (dana_jax.cost.job_cost) against the
reference's accounting (tests/references/environment_s8.py, ``run_cost``), on schedules
whose events are checked against the reference in test_environment_events.py."""

from __future__ import annotations

import numpy as np
import pytest

from dana_jax.cost import job_cost
from dana_jax.environment import Links, UpDown, make_environment
from dana_jax.schedule import DiscardAtDelay, RestartAtDelay, make_schedule
from dana_jax.timing import JobTiming, heterogeneous, homogeneous
from tests.references import environment_s8 as ref
from tests.schedule.test_environment_events import HAND_CASES, reference

CASES = {
    "links": (homogeneous(), 3, dict(links=Links(latency=[1.0, 3.0, 5.0], bandwidth=1e3)),
              2000, {}, 1),
    "queue_failures": (homogeneous(), 8, dict(
        links=Links(latency=1.0, bandwidth=1e4, master_bandwidth=400.0),
        availability=UpDown(mtbf=600.0, mttr=100.0)), 1000, {}, 1),
    "restart_failures": (heterogeneous(), 8, dict(availability=UpDown(mtbf=500.0,
                                                                       mttr=200.0)),
                         10, dict(restart_rule=RestartAtDelay(2)), 1),
    "discard_failures": (heterogeneous(), 8, dict(availability=UpDown(mtbf=500.0,
                                                                       mttr=200.0)),
                         10, dict(discard_rule=DiscardAtDelay(2)), 1),
    "local_steps": (homogeneous(), 3, dict(links=Links(latency=5.0, bandwidth=2e3),
                                           availability=UpDown(mtbf=2000.0, mttr=300.0)),
                    1000, {}, 4),
}
CASES.update({f"hand_{name}": (timing, timing.batch_times.shape[0], parts, p, rules, 1)
              for name, (timing, parts, p, _, rules) in HAND_CASES.items()})
NUM_STEPS = {f"hand_{name}": case[3] for name, case in HAND_CASES.items()}

# Checked on their own below, on the cases that tell the readings apart.
DIVERGING = ("gradients_lost", "idle_queue", "idle")
FIELDS = ("elapsed", "worker_time", "computing", "communicating", "lost", "goodput",
          "gradients_computed", "gradients_applied", "gradients_discarded", "bytes_pulled",
          "bytes_pushed", "idle_down", "idle_wait", *DIVERGING)


def costs(case):
  """(reference cost with the engine's names added, job_cost) of one case."""
  timing, n, parts, num_params, rules, h = CASES[case]
  env = make_environment(**parts)
  num_steps = NUM_STEPS.get(case, 60)
  _, jobs, down, links = reference(timing, n, num_steps, 0, env, num_params,
                                   draws_per_job=h, **rules)
  sched = make_schedule(JobTiming(timing, h) if h > 1 else timing, n, num_steps, seed=0,
                        environment=env, num_params=num_params, **rules)
  elapsed = float(sched.time[-1])
  want = ref.run_cost(jobs, down, n, elapsed, links.message_bytes, gradients_per_job=h)
  want.update(idle_queue=want["queue"], idle_down=want["down"], idle_wait=want["other_idle"])
  got = job_cost(sched.jobs, n, elapsed, down=sched.down,
                 message_bytes=links.message_bytes, gradients_per_job=h)
  return want, got


def differing(want, got, fields):
  return {f: (want[f], got[f]) for f in fields
          if not np.isclose(want[f], got[f], rtol=1e-9, atol=1e-9)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_job_cost_matches_reference(case):
  want, got = costs(case)
  wrong = differing(want, got, FIELDS)
  assert not wrong, f"(reference, job_cost) differ: {wrong}"
  # The partition: N·E = computing + communicating + queue + down + lost + other idle.
  assert want["other_idle"] == pytest.approx(0.0, abs=1e-6 * want["worker_time"])
  assert want["gradients_computed"] == (want["gradients_applied"]
                                        + want["gradients_discarded"]
                                        + want["gradients_lost"]
                                        + want["gradients_in_flight"])


# The reference counts failed or cancelled jobs whose compute had finished (computed =
# applied + discarded + lost + in flight).
@pytest.mark.parametrize("case", ["restart_failures", "hand_failure_mid_job"])
def test_gradients_lost_are_computed_gradients(case):
  want, got = costs(case)
  assert not differing(want, got, ["gradients_lost"])


# The reference removes the worker's down time from a queued message's wait (down counted
# once, the parts sum to N·E).
@pytest.mark.parametrize("case", ["queue_failures", "hand_failure_while_queued"])
def test_queue_wait_while_down_counted_once(case):
  want, got = costs(case)
  assert not differing(want, got, ["idle_queue", "idle"])
