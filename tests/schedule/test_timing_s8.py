"""docs/spec.md §8.3's compute models: log-normal, Pareto and the Alibaba PAI traces,
against literal transcriptions."""

import pathlib

import numpy as np
import pytest

from dana_jax import ConfigError
from dana_jax.schedule import WorkerDraws, make_schedule
from dana_jax.timing import make_timing

TRACES = pathlib.Path(__file__).resolve().parents[2] / "dana_jax" / "traces" / "alibaba_pai"


def literal_trace(job):
  """The file read by hand: per worker its batch_time_norm values in iteration order."""
  lines = (TRACES / f"{job}_norm.csv").read_text().splitlines()
  header = lines[0].split(",")
  w, it, v = header.index("worker"), header.index("time"), header.index("batch_time_norm")
  rows = [line.split(",") for line in lines[1:]]
  workers = sorted({int(r[w]) for r in rows})
  return [[float(r[v]) for r in sorted((r for r in rows if int(r[w]) == k),
                                       key=lambda r: int(r[it]))] for k in workers]


@pytest.mark.parametrize("job", ["job_1", "job_3"])
@pytest.mark.parametrize("num_workers", [4, 23])
def test_alibaba_batch_times_are_the_recorded_samples_rescaled(job, num_workers):
  trace = literal_trace(job)
  mean = np.mean([x for worker in trace for x in worker])
  timing = make_timing("alibaba", job=job)
  jobs = 2 * max(len(w) for w in trace) * 10 // 3  # past the end of a record: it cycles
  got = WorkerDraws(timing, num_workers, seed=5).upto(jobs)[:, :jobs]
  for i in range(num_workers):
    record = trace[i % 10]
    for j in (0, 9, 10, 11, 999, jobs - 1):
      sample = (j // 10 + (i // 10) * 37) % len(record)
      assert got[i, j] == pytest.approx(record[sample] * 128.0 / mean, rel=1e-12)


def test_alibaba_schedule_runs_and_has_the_job_mean():
  timing = make_timing("alibaba", job="job_2")
  sched = make_schedule(timing, 10, 200)
  assert sched.num_steps == 200
  values = np.concatenate([np.asarray(w) for w in literal_trace("job_2")])
  assert np.mean(values * 128.0 / values.mean()) == pytest.approx(128.0)


@pytest.mark.parametrize("name,arguments,cv", [
    ("lognormal", {"sigma": 0.5}, np.sqrt(np.exp(0.25) - 1)),
    ("pareto", {"alpha": 3.0}, 1 / np.sqrt(3.0 * 1.0)),
])
def test_heavy_tails_have_mean_128_and_their_cv(name, arguments, cv):
  timing = make_timing(name, **arguments)
  x = WorkerDraws(timing, 4, seed=1).upto(50_000)[:, :50_000]
  assert x.mean() == pytest.approx(128.0, rel=0.02)
  assert x.std() / x.mean() == pytest.approx(cv, rel=0.08)
  if name == "pareto":  # X ≥ x_m = 128 (α − 1)/α
    assert x.min() >= 128.0 * 2 / 3


@pytest.mark.parametrize("name", ["lognormal", "pareto"])
def test_heavy_tails_are_prefix_stable(name):
  timing = make_timing(name)
  short = make_schedule(timing, 5, 100, seed=3)
  long = make_schedule(timing, 5, 400, seed=3)
  np.testing.assert_array_equal(short.time, long.time[:100])
  np.testing.assert_array_equal(short.worker, long.worker[:100])


@pytest.mark.parametrize("name,arguments,field", [
    ("alibaba", {"job": "job_9"}, "timing.job='job_9'"),
    ("pareto", {"alpha": 1.0}, "timing.alpha=1.0"),
    ("lognormal", {"sigma": 0.0}, "timing.sigma=0.0"),
])
def test_bad_arguments_are_one_line(name, arguments, field):
  with pytest.raises(ConfigError) as error:
    make_timing(name, **arguments)
  assert str(error.value).startswith(field) and "\n" not in str(error.value)
