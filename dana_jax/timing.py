"""Timing models: how long each worker's batches take (spec §1).

A timing model draws the batch times ``X[i, j]`` (worker i's j-th job) from
per-worker numpy streams, so a schedule of T events is a prefix of a longer
one. The models: the GA paper's homogeneous environment (Gamma(100, 1.28),
CV 0.1), a heterogeneous one (shape 4, optionally persistent per-worker
speeds), constant times (round robin) and a user-supplied trace.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

import numpy as np

from dana_jax._checks import require as _require
from dana_jax.errors import ConfigError
from dana_jax.specs import Real, Spec, check_all, declared, takes

MEAN_BATCH_TIME = 128.0

# Each timing field's check, run when the model is made (and again by ``validate``).
POSITIVE_TIME = Real(0, low_open=True, meaning="a time in simulated units")
GAMMA_SHAPE = Real(0, low_open=True, meaning="the gamma shape k of a batch time")
GAMMA_SCALE = Real(0, low_open=True, meaning="the gamma scale of a batch time")
WORKER_SPEED_SHAPE = Real(0, low_open=True, optional=True, meaning=(
    "the gamma shape of the per-worker mean times; None: identical workers"))


@dataclasses.dataclass(frozen=True)
class TimingModel:
  """Base class: draws the batch times ``X[i, j]`` of every worker.

  ``specs``: each field's check (:mod:`dana_jax.specs`), run when the model is made.
  """

  specs: ClassVar[dict[str, Spec]] = {}

  def __post_init__(self):
    for field in dataclasses.fields(self):
      if field.name in self.specs:
        self.specs[field.name].check(f"timing.{field.name}", getattr(self, field.name))

  def validate(self, num_workers: int) -> None:
    """Refuses a model that cannot drive ``num_workers`` workers (and bad fields)."""
    del num_workers
    self.__post_init__()

  def mean(self) -> float:
    raise NotImplementedError

  def worker_means(self, num_workers: int, seed: int) -> np.ndarray:
    """Each worker's mean batch time [N] under timing seed ``seed`` (DyLU, spec §6.5)."""
    del seed
    return np.full(num_workers, self.mean())

  def worker_streams(self, num_workers: int, seed: int) -> list[np.random.Generator]:
    """One independent numpy stream per worker (plus one for shared draws)."""
    children = np.random.SeedSequence([int(seed), 0x5EED]).spawn(num_workers + 1)
    return [np.random.default_rng(c) for c in children]

  def draw(self, streams: list[np.random.Generator], first_job: int, count: int) -> np.ndarray:
    """Batch times of jobs ``first_job .. first_job + count - 1``, shape [N, count].

    Successive calls with consecutive ranges continue the same streams, so the
    schedule of T steps is a prefix of the schedule of more steps.
    """
    raise NotImplementedError

  def jobs_available(self, num_workers: int) -> np.ndarray | None:
    """How many jobs each worker's draws cover [N]; None: without end (random models). A
    schedule asks a finite model (a trace) for no job past these, and only for the jobs
    its run uses (``dana_jax.schedule.WorkerDraws``)."""
    del num_workers
    return None

  def draw_each(self, streams, first_jobs, counts) -> list[np.ndarray]:
    """Worker i's jobs ``first_jobs[i] .. first_jobs[i] + counts[i] − 1``, one array per
    worker: for workers that need different numbers of draws (DyLU's jobs of H_i draws,
    docs/spec.md §6.5). Consecutive calls continue each worker's stream, none skipped. The base
    class draws through :meth:`draw` when every worker asks for the same range."""
    first_jobs, counts = np.asarray(first_jobs, np.int64), np.asarray(counts, np.int64)
    if np.all(first_jobs == first_jobs[0]) and np.all(counts == counts[0]):
      return list(self.draw(streams, int(first_jobs[0]), int(counts[0])))
    raise ConfigError(f"timing={type(self).__name__} is not allowed here: it draws the same "
                      "jobs for every worker only (its draw), and this run needs a different "
                      "number per worker (dynamic_local_steps); define draw_each.")

  def refuse(self, worker: int, jobs: int, detail: str) -> None:
    """Raises: the run needs ``jobs`` jobs of ``worker``, more than the model covers."""
    raise ConfigError(f"timing={type(self).__name__} is not allowed: the run needs at least "
                      f"{jobs} jobs of worker {worker} ({detail}), more than it draws.")


@dataclasses.dataclass(frozen=True)
class GammaTiming(TimingModel):
  """Batch times X ~ Gamma(shape, scale), independent across workers and jobs.

  With ``worker_speed_shape`` set, each worker first draws a persistent mean
  batch time m_i ~ Gamma(worker_speed_shape, mean / worker_speed_shape) and then
  X_ij ~ Gamma(shape, m_i / shape): slow and fast machines (spec §1).
  """

  shape: float = 100.0
  scale: float = 1.28
  worker_speed_shape: float | None = None

  specs: ClassVar[dict[str, Spec]] = {
      "shape": GAMMA_SHAPE, "scale": GAMMA_SCALE, "worker_speed_shape": WORKER_SPEED_SHAPE}

  def mean(self) -> float:
    return self.shape * self.scale

  def worker_scales(self, streams: list[np.random.Generator]) -> np.ndarray:
    num_workers = len(streams) - 1
    if self.worker_speed_shape is None:
      return np.full(num_workers, self.scale)
    # The shared stream (last) draws the persistent per-worker mean times.
    shared = np.random.default_rng(streams[-1].bit_generator.seed_seq)  # fresh copy
    means = shared.gamma(self.worker_speed_shape, self.mean() / self.worker_speed_shape,
                         size=num_workers)
    return means / self.shape

  def worker_means(self, num_workers, seed):
    return self.worker_scales(self.worker_streams(num_workers, seed)) * self.shape

  def draw(self, streams, first_job, count):
    del first_job  # The streams carry the position.
    scales = self.worker_scales(streams)
    return np.stack([s.gamma(self.shape, 1.0, size=count) * scales[i]
                     for i, s in enumerate(streams[:-1])])

  def draw_each(self, streams, first_jobs, counts):
    del first_jobs  # The streams carry the position.
    scales = self.worker_scales(streams)
    return [s.gamma(self.shape, 1.0, size=int(c)) * scales[i]
            for i, (s, c) in enumerate(zip(streams[:-1], counts, strict=True))]


@takes(mean=POSITIVE_TIME, shape=GAMMA_SHAPE, worker_speed_shape=WORKER_SPEED_SHAPE)
def homogeneous(mean: float = MEAN_BATCH_TIME, shape: float = 100.0,
                worker_speed_shape: float | None = None) -> GammaTiming:
  """The GA paper's homogeneous environment: Gamma(100, 1.28), CV 0.1 per batch.
  ``worker_speed_shape`` adds persistent per-worker speeds (:class:`GammaTiming`)."""
  check_all("timing", declared(homogeneous), dict(mean=mean, shape=shape))
  return GammaTiming(shape=shape, scale=mean / shape, worker_speed_shape=worker_speed_shape)


@takes(mean=POSITIVE_TIME, shape=GAMMA_SHAPE, worker_speed_shape=WORKER_SPEED_SHAPE)
def heterogeneous(mean: float = MEAN_BATCH_TIME, shape: float = 4.0,
                  worker_speed_shape: float | None = None) -> GammaTiming:
  """A heterogeneous environment: same mean, gamma shape 4 (CV 0.5) by default.

  The GA paper's exact parameters are not known (spec §1, a documented
  choice). ``worker_speed_shape`` adds persistent per-worker speeds.
  """
  check_all("timing", declared(heterogeneous), dict(mean=mean, shape=shape))
  return GammaTiming(shape=shape, scale=mean / shape, worker_speed_shape=worker_speed_shape)


@dataclasses.dataclass(frozen=True)
class ConstantTiming(TimingModel):
  """Every batch takes the same time: round robin, τ = N − 1 after the first round."""

  batch_time: float = MEAN_BATCH_TIME

  specs: ClassVar[dict[str, Spec]] = {"batch_time": POSITIVE_TIME}

  def mean(self):
    return self.batch_time

  def draw(self, streams, first_job, count):
    return np.full((len(streams) - 1, count), float(self.batch_time))

  def draw_each(self, streams, first_jobs, counts):
    return [np.full(int(c), float(self.batch_time)) for c in counts]


@dataclasses.dataclass(frozen=True, eq=False)
class TraceTiming(TimingModel):
  """A user-supplied trace: ``batch_times[i, j]`` is worker i's j-th batch time.

  ``batch_times``: the array, or the path of a ``.npy`` file holding it (read without
  pickles), so a config names a measured cluster's trace by its file.
  """

  batch_times: np.ndarray

  def __post_init__(self):
    if isinstance(self.batch_times, (str, os.PathLike)):
      object.__setattr__(self, "batch_times", _read_trace(self.batch_times))
    try:
      times = np.asarray(self.batch_times, dtype=np.float64)
    except (TypeError, ValueError):
      raise ConfigError(f"timing.batch_times={type(self.batch_times).__name__} is not "
                        "allowed: need a 2-D array of numbers [num_workers, num_jobs].") from None
    _require(times.ndim == 2, "timing.batch_times.ndim", times.ndim,
             "the trace must be a 2-D array [num_workers, num_jobs]")
    _require(times.shape[1] >= 1, "timing.batch_times.shape[1]", times.shape[1],
             "the trace needs at least one batch time per worker")
    _require(bool(np.all(np.isfinite(times)) and np.all(times > 0)), "timing.batch_times",
             "<array>", "every batch time must be positive and finite")

  def validate(self, num_workers):
    self.__post_init__()
    times = np.asarray(self.batch_times, dtype=np.float64)
    _require(times.shape[0] == num_workers, "timing.batch_times.shape[0]", times.shape[0],
             f"the trace must have one row per worker (num_workers={num_workers})")

  def mean(self):
    return float(np.mean(self.batch_times))

  def worker_means(self, num_workers, seed):
    del seed
    return np.asarray(self.batch_times, np.float64)[:num_workers].mean(axis=1)

  def jobs_available(self, num_workers):
    return np.full(num_workers, np.shape(self.batch_times)[1], np.int64)

  def refuse(self, worker, jobs, detail):
    num_workers, rows = np.shape(self.batch_times)
    raise ConfigError(
        f"timing.batch_times=<a {num_workers} × {rows} trace> is not allowed: the run needs "
        f"at least {jobs} batch times of worker {worker} ({detail}); supply a trace of at "
        f"least {jobs} batch times per worker, or simulate fewer steps.")

  def draw(self, streams, first_job, count):
    return np.stack(self.draw_each(streams, [first_job] * (len(streams) - 1),
                                   [count] * (len(streams) - 1)))

  def draw_each(self, streams, first_jobs, counts):
    times = np.asarray(self.batch_times, dtype=np.float64)
    for i, (first, count) in enumerate(zip(first_jobs, counts, strict=True)):
      if first + count > times.shape[1]:
        self.refuse(i, int(first + count), f"jobs {first} … {first + count - 1} were asked for")
    return [times[i, first:first + count]
            for i, (first, count) in enumerate(zip(first_jobs, counts, strict=True))]


def _read_trace(path) -> np.ndarray:
  """The array of a trace's ``.npy`` file; a path that is no such file is one ConfigError."""
  field = f"timing.batch_times={os.fspath(path)!r}"
  if not os.path.isfile(path):
    raise ConfigError(f"{field} is not allowed: need a .npy file of batch times "
                      "[num_workers, jobs] (or the array itself).")
  try:
    return np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise ConfigError(f"{field} is not allowed: not a readable .npy array "
                      f"({str(e).splitlines()[0] if str(e) else type(e).__name__}).") from None


LOGNORMAL_SIGMA = Real(0, low_open=True, meaning="σ of log X (the CV is √(exp(σ²) − 1))")
PARETO_ALPHA = Real(1, low_open=True, meaning="the Pareto tail index α > 1 (finite mean)")


@dataclasses.dataclass(frozen=True)
class LognormalTiming(TimingModel):
  """Heavy-tailed batch times (docs/spec.md §8.3): X = exp(μ + σZ), Z ~ N(0, 1), with
  μ = ln(mean) − σ²/2 so that E[X] = ``mean``; CV √(exp(σ²) − 1) (σ = 0.5: 0.53). Each
  worker draws from its own stream, as the gamma models do."""

  sigma: float = 0.5
  mean_time: float = MEAN_BATCH_TIME

  specs: ClassVar[dict[str, Spec]] = {"sigma": LOGNORMAL_SIGMA, "mean_time": POSITIVE_TIME}

  def mean(self):
    return self.mean_time

  def draw(self, streams, first_job, count):
    return np.stack(self.draw_each(streams, [first_job] * (len(streams) - 1),
                                   [count] * (len(streams) - 1)))

  def draw_each(self, streams, first_jobs, counts):
    mu = np.log(self.mean_time) - 0.5 * self.sigma ** 2
    return [np.exp(mu + self.sigma * s.standard_normal(int(c)))
            for s, c in zip(streams[:-1], counts, strict=True)]


@dataclasses.dataclass(frozen=True)
class ParetoTiming(TimingModel):
  """Heavy-tailed batch times (docs/spec.md §8.3): classical Pareto of index α > 1 and scale
  x_m = mean · (α − 1)/α, so E[X] = ``mean`` and X ≥ x_m: P(X > x) = (x_m / x)^α. Its
  variance is infinite for α ≤ 2 (α = 3: CV 0.58). Each worker draws from its own stream."""

  alpha: float = 3.0
  mean_time: float = MEAN_BATCH_TIME

  specs: ClassVar[dict[str, Spec]] = {"alpha": PARETO_ALPHA, "mean_time": POSITIVE_TIME}

  def mean(self):
    return self.mean_time

  def draw(self, streams, first_job, count):
    return np.stack(self.draw_each(streams, [first_job] * (len(streams) - 1),
                                   [count] * (len(streams) - 1)))

  def draw_each(self, streams, first_jobs, counts):
    x_m = self.mean_time * (self.alpha - 1.0) / self.alpha
    # numpy's pareto is the Lomax (Pareto II) law; 1 + it is the classical Pareto of x_m 1.
    return [x_m * (1.0 + s.pareto(self.alpha, int(c)))
            for s, c in zip(streams[:-1], counts, strict=True)]


# How far apart (in recorded samples) the copies of a trace worker start when N > 10: copy c
# of trace worker w (worker 10c + w) starts at sample 37c of w's record (a prime, so copies
# are not in lockstep for any record length of the four jobs: 239 … 2183 samples).
ALIBABA_COPY_OFFSET = 37


@dataclasses.dataclass(frozen=True)
class AlibabaTiming(TimingModel):
  """A real cluster's batch times (docs/spec.md §8.3): the Alibaba PAI mini-batch times of
  one of four 10-worker training jobs (CC BY 4.0, ``dana_jax/traces/alibaba_pai``).

  ``job``: ``"job_1"`` … ``"job_4"``. Each trace worker's time was recorded every 10
  iterations (normalised to 0–1000 in the file); worker i's j-th batch time is its
  recorded sample ⌊j/10⌋, rescaled by 128 / (the job's mean over every recorded sample),
  cycling at the end of its record. N ≤ 10 takes trace workers 0 … N − 1; for N > 10
  worker i is trace worker i mod 10 starting ⌊i/10⌋ · 37 samples into its record
  (:data:`ALIBABA_COPY_OFFSET`, a choice). No randomness: the seed is not used.
  """

  job: str = "job_1"
  mean_time: float = MEAN_BATCH_TIME

  specs: ClassVar[dict[str, Spec]] = {"mean_time": POSITIVE_TIME}

  def __post_init__(self):
    from dana_jax.traces import ALIBABA_JOBS
    _require(self.job in ALIBABA_JOBS, "timing.job", self.job,
             f"choose one of the Alibaba PAI jobs {list(ALIBABA_JOBS)}")
    super().__post_init__()

  def records(self) -> tuple[np.ndarray, ...]:
    """The job's 10 workers' samples, rescaled so the job's mean is ``mean_time``."""
    from dana_jax.traces import alibaba_job
    raw = alibaba_job(self.job)
    scale = self.mean_time / float(np.mean(np.concatenate(raw)))
    return tuple(r * scale for r in raw)

  def mean(self):
    return self.mean_time

  def worker_means(self, num_workers, seed):
    del seed
    records = self.records()
    return np.asarray([records[i % len(records)].mean() for i in range(num_workers)])

  def draw(self, streams, first_job, count):
    return np.stack(self.draw_each(streams, [first_job] * (len(streams) - 1),
                                   [count] * (len(streams) - 1)))

  def draw_each(self, streams, first_jobs, counts):
    records = self.records()
    out = []
    for i, (first, count) in enumerate(zip(first_jobs, counts, strict=True)):
      record = records[i % len(records)]
      jobs = np.arange(int(first), int(first) + int(count))
      sample = (jobs // 10 + (i // len(records)) * ALIBABA_COPY_OFFSET) % record.size
      out.append(record[sample])
    return out


# Every timing model by name: ``make_timing(name, **arguments)`` builds one, its arguments
# the constructor's (an experiment's ``config.timing = dict(name=..., **arguments)``).
TIMING_MODELS = {"homogeneous": homogeneous, "heterogeneous": heterogeneous,
                 "gamma": GammaTiming, "constant": ConstantTiming, "trace": TraceTiming,
                 "lognormal": LognormalTiming, "pareto": ParetoTiming, "alibaba": AlibabaTiming}


def timing_arguments(name: str) -> dict[str, str]:
  """The arguments ``make_timing(name, ...)`` takes, each with what it means (its declared
  check, :mod:`dana_jax.specs`); what a config's help lists for ``config.timing``."""
  import inspect
  factory = TIMING_MODELS[name]
  specs = {**getattr(factory, "specs", {}), **declared(factory)}
  doc = " ".join((inspect.getdoc(factory) or "").split())
  out = {}
  for key, parameter in inspect.signature(factory).parameters.items():
    spec = specs.get(key)
    if spec is not None:
      what = spec.describe()
    else:  # described in the docstring: "``key``: what it is."
      what = doc.partition(f"``{key}``: ")[2].partition(". ")[0].rstrip(".") or "required"
    empty = parameter.default is inspect.Parameter.empty
    out[key] = what + ("" if empty else f"; default {parameter.default!r}")
  return out


def make_timing(name: str, **kwargs) -> TimingModel:
  """Builds a timing model by name: one of ``TIMING_MODELS``, with its constructor's
  keyword arguments (``make_timing("heterogeneous", worker_speed_shape=2.0)``)."""
  if not isinstance(name, str) or name not in TIMING_MODELS:
    raise ConfigError(f"timing.name={name!r} is not allowed: choose one of "
                     f"{sorted(TIMING_MODELS)}.")
  import inspect
  takes = inspect.signature(TIMING_MODELS[name]).parameters
  for key in kwargs:
    if key not in takes:
      raise ConfigError(f"timing.{key} is not allowed with timing {name!r}: it takes "
                       f"{sorted(takes)}.")
  for key, parameter in takes.items():
    if parameter.default is inspect.Parameter.empty and key not in kwargs:
      raise ConfigError(f"timing.{key} is missing: timing {name!r} needs it (it takes "
                        f"{sorted(takes)}).")
  return TIMING_MODELS[name](**kwargs)


@dataclasses.dataclass(frozen=True, eq=False)
class JobTiming(TimingModel):
  """Jobs of H consecutive batches: a job takes the sum of H draws of ``base`` (spec §6.5:
  a worker running H local steps).

  ``draws_per_job``: H, or one H_i per worker (DyLU): worker i's j-th job then takes
  the next H_i draws of its stream, draws j·H_i … j·H_i + H_i − 1 (a trace's rows in
  order, none skipped), so a job's time does not depend on how the schedule is cut into
  calls (the prefix property).
  """

  base: TimingModel
  draws_per_job: int | tuple[int, ...]

  def _per_worker(self, num_workers) -> np.ndarray:
    return np.broadcast_to(np.asarray(self.draws_per_job, np.int64), (num_workers,))

  def validate(self, num_workers):
    self.base.validate(num_workers)

  def mean(self):
    return float(np.mean(self.draws_per_job)) * self.base.mean()

  def worker_streams(self, num_workers, seed):
    return self.base.worker_streams(num_workers, seed)

  def jobs_available(self, num_workers):
    rows = self.base.jobs_available(num_workers)
    return None if rows is None else rows // self._per_worker(num_workers)

  def refuse(self, worker, jobs, detail):
    per = np.asarray(self.draws_per_job, np.int64)
    h = int(per if per.ndim == 0 else per[worker])
    self.base.refuse(worker, jobs * h, f"{jobs} jobs of {h} batch times; {detail}")

  def draw(self, streams, first_job, count):
    n = len(streams) - 1
    return np.stack(self.draw_each(streams, [first_job] * n, [count] * n))

  def draw_each(self, streams, first_jobs, counts):
    h = self._per_worker(len(streams) - 1)
    first_jobs, counts = np.asarray(first_jobs, np.int64), np.asarray(counts, np.int64)
    rows = self.base.draw_each(streams, first_jobs * h, counts * h)
    return [np.asarray(r, np.float64).reshape(int(c), int(hi)).sum(axis=-1)
            for r, c, hi in zip(rows, counts, h, strict=True)]
