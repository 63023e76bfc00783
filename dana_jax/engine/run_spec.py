"""The frozen description of one simulation: everything but the model and the data.

:class:`RunSpec` holds the algorithm, its options and rules, the worker count,
the batch size, the seeds, the timing model and the execution, each resolved and
checked once by :meth:`RunSpec.create`, which needs no model, no data and no
compilation. What the engine derives from them (the rounds' gradients G, the
batches of a master step, the steps of an epoch, DyLU's H_i) is computed there
too. The host side of a chunk (``plan``), the memory model (``memory``) and
checkpoints (``dana_jax.checkpoint``) take a RunSpec as an explicit argument;
a :class:`~dana_jax.Simulator` builds one (``simulator.spec``) and adds the
model, the data and the compiled chunks.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from dana_jax import algorithms as _algorithms
from dana_jax import schedule as _schedule
from dana_jax import sharding as _sharding
from dana_jax import timing as _timing
from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.engine import arguments
from dana_jax.engine.core import EXECUTIONS, REPLICA_EXECUTIONS, default_execution
from dana_jax.engine.core import default_replica_execution as _default_replica_execution
from dana_jax.workers import Gradient, batches_per_job


def _check_seeds(seeds, timing_seeds):
  """(single, seeds, timing seeds): an int seed is one run without a replica axis."""
  single = is_int(seeds)
  seeds = [int(seeds)] if single else [int(s) for s in seeds]
  _require(len(seeds) >= 1, "seeds", seeds, "need at least one seed")
  timing_seeds = list(seeds) if timing_seeds is None else [int(s) for s in timing_seeds]
  _require(len(timing_seeds) == len(seeds), "timing_seeds", timing_seeds,
           f"need one per replica ({len(seeds)})")
  for field, values in (("seeds", seeds), ("timing_seeds", timing_seeds)):
    # numpy's generators and jax's keys take a seed as a non-negative int64
    _require(all(0 <= s < 2 ** 63 for s in values), field, values,
             "need integers in [0, 2^63)")
  return single, tuple(seeds), tuple(timing_seeds)


def _check_mesh(replica_devices, worker_devices, algorithm, execution, num_replicas, single,
                gradients_per_round):
  _require(num_replicas % replica_devices == 0
           and (replica_devices == 1 or not single), "mesh.replicas",
           replica_devices, f"must divide the number of replicas ({num_replicas}; "
           "a single int seed has no replica axis)")
  if worker_devices > 1 and algorithm.synchronous:
    _require(gradients_per_round % worker_devices == 0, "mesh.workers",
             worker_devices, f"must divide the gradients per round "
             f"({gradients_per_round}) of a synchronous algorithm")
  elif worker_devices > 1:
    _require(execution == "blocks", "mesh.workers", worker_devices,
             f"shards a block's gradients: needs execution='blocks' (got {execution!r})")


def _replica_execution(given, mesh) -> str:
  _require(given in REPLICA_EXECUTIONS, "replica_execution", given,
           f"choose one of {REPLICA_EXECUTIONS}")
  split = _sharding.axis_size(mesh, "replicas") > 1
  if given == "auto":
    return "vmap" if split else _default_replica_execution()
  _require(given == "vmap" or not split, "replica_execution", given,
           "'loop' runs the replicas one after another on each device: a mesh that splits "
           "them (mesh.replicas > 1) needs 'vmap' or 'auto'")
  return given


def _one_rule(field, given, of_algorithm):
  _require(given is None or of_algorithm is None, field, type(given).__name__,
           "is set by the algorithm itself; leave it None")
  return of_algorithm if given is None else given


def batches_per_step(algorithm, num_workers: int, options=None, timing=None,
                     timing_seeds=(0,), *, worker_program=None, round_rule=None) -> int | float:
  """Stream batches per master step (docs/spec.md §2.9, §6.5): G per synchronous round, H per
  job, or with DyLU the expected H_i of an apply event
  (:func:`~dana_jax.workers.batches_per_job`). The algorithm's own rules unless
  ``worker_program`` / ``round_rule`` are given. :attr:`RunSpec.batches_per_step` is this
  count for a checked configuration."""
  entry = _algorithms.get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
  event_plan = entry.event_plan(int(num_workers), dict(options or {}))
  if entry.synchronous:
    rule = round_rule or event_plan.round_rule or _schedule.SynchronousRule()
    return rule.gradients(int(num_workers))
  program = worker_program or event_plan.worker_program or Gradient()
  timing = _timing.homogeneous() if timing is None else timing
  return batches_per_job(program, timing, int(num_workers), timing_seeds)


def _environment(environment, timing, algorithm, num_workers, num_params, round_rule):
  """The run's Environment: the given one (its compute part the timing), or one of
  ``timing`` alone (docs/spec.md §8; every other part at its default)."""
  from dana_jax.environment import Environment

  if environment is None:
    _require(timing is None or isinstance(timing, _timing.TimingModel), "timing",
             type(timing).__name__,
             f"use one of the timing models {sorted(_timing.TIMING_MODELS)}")
    return Environment(compute=_timing.homogeneous() if timing is None else timing)
  _require(isinstance(environment, Environment), "environment", type(environment).__name__,
           "need a dana_jax.environment.Environment (make_environment(...)) or None")
  _require(timing is None, "timing", type(timing).__name__,
           "not with an environment: its compute part is the timing model "
           "(Environment(compute=...))")
  environment.validate(num_workers)
  rules = (_schedule.SynchronousRule, _schedule.FastestRule)
  _require(not algorithm.synchronous or environment.times_default()
           or isinstance(round_rule, rules), "environment", environment.describe(),
           f"{algorithm.name!r}'s rounds ({type(round_rule).__name__}) do not take links, "
           "failures or slowdowns yet (docs/spec.md §8: SSGD's and m-sync's rounds do)")
  _require(num_params is None or is_int(num_params, 1), "num_params", num_params,
           "need an integer ≥ 1 (the model's parameter count) or None")
  return environment


@dataclasses.dataclass(frozen=True, eq=False)
class RunSpec:
  """One simulation, model and data aside: checked, resolved, immutable.

  Build it with :meth:`create` (a :class:`~dana_jax.Simulator` does, as
  ``simulator.spec``). The fields below :attr:`mesh` are derived.

  Attributes:
    algorithm: the :class:`~dana_jax.algorithms.Algorithm`.
    options: its options (read-only).
    num_workers: N.
    batch_size: B, examples per gradient.
    num_examples: examples in the training set (one epoch is a pass of the stream of
      ``num_examples // batch_size`` batches, docs/spec.md §1).
    execution: ``"steps"`` or ``"blocks"`` (``"auto"`` resolved).
    block_size: K of ``"blocks"`` (1 for ``"steps"``).
    seeds, timing_seeds: one per replica (tuples).
    single: an int seed: one run without a replica axis.
    replica_execution: ``"vmap"`` or ``"loop"`` (``"auto"`` resolved).
    mesh: the ``("replicas", "workers")`` mesh, or None.
    timing: the timing model.
    program: the worker program (``dana_jax.workers``).
    round_rule: the rounds of a synchronous algorithm (SSGD's by default).
    restart_rule, discard_rule: the algorithm's (or the given) event rules, or None.
    num_replicas: R.
    replica_devices, worker_devices: the mesh's axis sizes (1 without a mesh).
    block_width: K padded with no-ops to a multiple of the worker devices.
    synchronous: rounds instead of events.
    gradients_per_round: G of a round (its rule's; also set for asynchronous runs).
    masked_steps: the events include restarts, discards, failures or rejoins (not every
      event applies).
    job_steps: per replica, DyLU's H_i per worker, or None (every job takes H batches).
    batches_per_step: stream batches per master step (:func:`batches_per_step`).
    steps_per_epoch: master steps per epoch, an int when it divides, else a float.
    environment: the run's :class:`~dana_jax.environment.Environment` (docs/spec.md §8);
      its ``compute`` part is :attr:`timing`.
    num_params: P, the model's parameter count (what a message carries, §8.1), or None
      when not known (the links are free, or no model was given).
  """

  algorithm: Any
  options: Mapping
  num_workers: int
  batch_size: int
  num_examples: int
  execution: str
  block_size: int
  seeds: tuple
  timing_seeds: tuple
  single: bool
  replica_execution: str
  mesh: Any
  timing: Any
  program: Any
  round_rule: Any
  restart_rule: Any
  discard_rule: Any
  num_replicas: int
  replica_devices: int
  worker_devices: int
  block_width: int
  synchronous: bool
  gradients_per_round: int
  masked_steps: bool
  job_steps: tuple
  batches_per_step: int | float
  steps_per_epoch: int | float
  environment: Any = None
  num_params: int | None = None

  @classmethod
  def create(cls, algorithm, *, num_workers: int, batch_size: int, num_examples: int,
             algorithm_options: Mapping | None = None, timing=None, execution: str = "auto",
             block_size: int | None = None, seeds=0, timing_seeds=None,
             replica_execution: str = "auto", mesh=None, worker_program=None,
             restart_rule=None, round_rule=None, environment=None,
             num_params: int | None = None) -> RunSpec:
    """Checks and resolves one simulation's configuration; the arguments are the
    :class:`~dana_jax.Simulator`'s of the same names (``num_examples``: the training
    set's size).

    Raises:
      ConfigError: one line naming the first argument (or option, or timing field) that
        is not allowed — the Simulator's own messages.
    """
    arguments.check_run_spec(algorithm, algorithm_options=algorithm_options, seeds=seeds,
                             timing_seeds=timing_seeds, worker_program=worker_program,
                             restart_rule=restart_rule, round_rule=round_rule)
    algorithm = (_algorithms.get_algorithm(algorithm) if isinstance(algorithm, str)
                 else algorithm)
    options = dict(algorithm_options or {})
    block_size = num_workers if block_size is None else block_size
    for field, value in (("num_workers", num_workers), ("batch_size", batch_size),
                         ("block_size", block_size)):
      _require(is_int(value, 1), field, value, "need an integer ≥ 1")
    _require(execution in EXECUTIONS, "execution", execution, f"choose one of {EXECUTIONS}")
    execution = default_execution() if execution == "auto" else execution
    _require(is_int(num_examples, 0), "num_examples", num_examples, "need an integer ≥ 0")
    _require(batch_size <= num_examples, "batch_size", batch_size,
             f"must not exceed the number of training examples ({num_examples})")
    single, seeds, timing_seeds = _check_seeds(seeds, timing_seeds)
    num_workers = int(num_workers)
    algorithm.check_options(options)
    # The algorithm's own rules (spec §6); each checks its options here, before compiling.
    event_plan = algorithm.event_plan(num_workers, options)
    algorithm.optimizer(0.1, 0.9, 1e-4, num_workers, options)
    restart_rule = _one_rule("restart_rule", restart_rule, event_plan.restart_rule)
    round_rule = _one_rule("round_rule", round_rule, event_plan.round_rule)
    worker_program = _one_rule("worker_program", worker_program, event_plan.worker_program)
    round_rule = round_rule or _schedule.SynchronousRule()
    gradients_per_round = round_rule.gradients(num_workers)
    _sharding.validate_mesh(mesh)
    replica_execution = _replica_execution(replica_execution, mesh)
    replica_devices = _sharding.axis_size(mesh, "replicas")
    worker_devices = _sharding.axis_size(mesh, "workers")
    _check_mesh(replica_devices, worker_devices, algorithm, execution, len(seeds), single,
                gradients_per_round)
    environment = _environment(environment, timing, algorithm, num_workers, num_params,
                               round_rule)
    timing = environment.compute
    _schedule.validate_schedule_args(timing, num_workers, 1, block_size)
    block_size = int(block_size) if execution == "blocks" else 1
    program = worker_program or Gradient()
    synchronous = algorithm.synchronous
    # H_i per worker and replica (DyLU; None: every job takes H batches).
    job_steps = tuple(None if synchronous else
                      program.steps_per_worker(timing, num_workers, s) for s in timing_seeds)
    # Batches per master step: G per round, H per job; one epoch is a pass of the stream.
    per_step = (gradients_per_round if synchronous
                else batches_per_job(program, timing, num_workers, list(timing_seeds)))
    per_epoch = int(num_examples) // int(batch_size)
    steps_per_epoch = per_epoch // per_step if per_epoch % per_step == 0 else (
        per_epoch / per_step)
    return cls(
        algorithm=algorithm, options=types.MappingProxyType(options),
        num_workers=num_workers, batch_size=int(batch_size), num_examples=int(num_examples),
        execution=execution, block_size=block_size, seeds=seeds, timing_seeds=timing_seeds,
        single=single, replica_execution=replica_execution, mesh=mesh, timing=timing,
        program=program, round_rule=round_rule, restart_rule=restart_rule,
        discard_rule=event_plan.discard_rule, num_replicas=len(seeds),
        replica_devices=replica_devices, worker_devices=worker_devices,
        # Blocks hold ≤ block_size events, padded with no-ops to a multiple of the devices.
        block_width=-(-block_size // worker_devices) * worker_devices,
        synchronous=synchronous, gradients_per_round=gradients_per_round,
        masked_steps=(restart_rule is not None or event_plan.discard_rule is not None
                      or not environment.availability.is_default),
        job_steps=job_steps, batches_per_step=per_step, steps_per_epoch=steps_per_epoch,
        environment=environment, num_params=None if num_params is None else int(num_params))

  def steps_for_epochs(self, epochs: float) -> int:
    """Master steps (rounds) of ``epochs`` passes of the stream, floored (spec §2.9)."""
    return max(1, int(np.floor(epochs * self.steps_per_epoch + 1e-9)))

  def __repr__(self) -> str:
    return (f"RunSpec({self.algorithm.name!r}, num_workers={self.num_workers}, "
            f"batch_size={self.batch_size}, num_examples={self.num_examples}, "
            f"execution={self.execution!r}, replicas={self.num_replicas})")
