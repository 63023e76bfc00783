"""docs/spec.md §8.1–§8.3 for synchronous rounds (SSGD, m-sync), against literal loops."""

import math

import numpy as np
import pytest

from dana_jax import schedule as S
from dana_jax.environment import DownPeriods, Environment, Links, StepSlowdown, make_environment
from dana_jax.errors import ConfigError
from dana_jax.timing import heterogeneous


class FixedDown:
  """A user-defined availability part: given down periods per worker (a test's)."""

  is_default = False

  def __init__(self, periods, wait_for_all=False):
    self.fixed, self.wait_for_all = periods, wait_for_all

  def validate(self, num_workers):
    assert len(self.fixed) == num_workers

  def periods(self, num_workers, seed):
    def extend(worker, periods, until):
      periods.extend(self.fixed[worker])
      return math.inf
    return DownPeriods(num_workers, extend)


def draws(n, jobs, seed=3):
  return S.WorkerDraws(heterogeneous(), n, seed).upto(jobs)


@pytest.mark.parametrize("collective", ["slowest", "ring"])
@pytest.mark.parametrize("m", [None, 2])
def test_links_and_slowdowns_literal(collective, m):
  n, rounds, p = 3, 12, 1000
  links = Links(latency=[1.0, 5.0, 2.0], bandwidth=[1e3, 4e2, 2e3], collective=collective)
  speed = StepSlowdown(changes=[(1, 500.0, 3.0)])
  env = Environment(compute=heterogeneous(), links=links, speed=speed)
  rule = S.SynchronousRule() if m is None else S.FastestRule(m, n)
  got = S.make_rounds(heterogeneous(), n, rounds, seed=3, rule=rule, environment=env,
                      num_params=p)
  x = draws(n, rounds)
  pull = np.array([1.0, 5.0, 2.0]) + 4 * p / np.array([1e3, 4e2, 2e3])
  now, ends = 0.0, []
  for r in range(rounds):
    c = x[:, r] * np.array([1.0, 3.0 if now >= 500.0 else 1.0, 1.0])
    part = np.sort(c)[-1 if m is None else m - 1]
    if collective == "ring":
      d = part + 2 * 2 / 3 * 4 * p / 4e2 + 2 * 2 * 5.0
    else:
      d = pull.max() + part + pull.max()
    now += d
    ends.append(now)
  np.testing.assert_allclose(got.time, ends, rtol=1e-12)


def test_failures_shrink_the_round_or_wait():
  # Worker 1 is down on [100, 400): it fails in round 0 (which would end after 100) and
  # sits out the rounds that start inside its down period.
  n, p = 2, 10
  down = FixedDown([[], [(100.0, 400.0)]])
  env = Environment(compute=heterogeneous(), availability=down)
  got = S.make_rounds(heterogeneous(), n, 6, seed=3, environment=env, num_params=p)
  x = draws(n, 12)
  now, ends, counts, used = 0.0, [], [], [0, 0]
  for _ in range(6):
    up = [i for i in range(n) if not (i == 1 and 100.0 <= now < 400.0)]
    c = {}
    for i in up:
      c[i] = x[i, used[i]]
      used[i] += 1
    members = list(up)
    end = now + max(c[i] for i in members)
    if 1 in members and now < 100.0 < end:
      members.remove(1)
      end = now + max(c[i] for i in members)
    now = end
    ends.append(end)
    counts.append(len(members))
  np.testing.assert_allclose(got.time, ends, rtol=1e-12)
  np.testing.assert_array_equal(got.gradients, counts)
  assert got.gradients.min() == 1 and got.cancelled.sum() == 1

  waiting = Environment(compute=heterogeneous(), availability=FixedDown(
      [[], [(5.0, 400.0)]], wait_for_all=True))
  got = S.make_rounds(heterogeneous(), n, 1, seed=3, environment=waiting, num_params=p)
  assert min(x[0, 0], x[1, 0]) > 5.0  # worker 1 fails at 5, redoes its job from 400
  assert got.time[0] == pytest.approx(max(x[0, 0], 400.0 + x[1, 1]))
  np.testing.assert_array_equal(got.gradients, [2])


def test_rennala_in_an_environment_is_refused_in_one_line():
  env = make_environment(links=dict(latency=1.0))
  with pytest.raises(ConfigError, match="not built yet"):
    S.make_rounds(heterogeneous(), 3, 4, rule=S.RennalaRule(3), environment=env,
                  num_params=10)
