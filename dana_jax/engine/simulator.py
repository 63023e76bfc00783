"""The :class:`Simulator`: one simulation's model, data and compiled chunks.

Its configuration is a :class:`~dana_jax.RunSpec` (``simulator.spec``, checked
once by ``RunSpec.create``); the Simulator adds what needs the model and the data:
their checks, the training arrays on the device, the data order, and the traced
pieces (``step``) wired to the model, the worker program, the optimizer and the
placement (``placement``). The host loop is :func:`dana_jax.simulate` (``loop``).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax import transforms as _transforms
from dana_jax.engine import arguments, compatibility, memory, plan, step
from dana_jax.engine import metrics as _metrics
from dana_jax.engine.core import Hyperparams, Model, SimState, all_finite, check_hyperparams
from dana_jax.engine.host_data import DataOrder, HostData
from dana_jax.engine.placement import Placement
from dana_jax.engine.rows import merge_view, replica_view
from dana_jax.engine.run_spec import RunSpec
from dana_jax.errors import ConfigError

# Named streams of a seed's key.
INIT_STREAM, DATA_STREAM = 1, 2


class Simulator:
  """Simulates one parameter server and N workers (spec §1, §6.0).

  Args:
    model: a :class:`Model`.
    algorithm: a registry name (``dana_jax.ALGORITHMS``) or an
      :class:`~dana_jax.algorithms.Algorithm`.
    train_inputs, train_labels: the training set: arrays (kept on device), or a
      :class:`HostData` with ``train_labels=None`` (kept on the host, loaded per chunk).
    num_workers: N ≥ 1.
    batch_size: B, examples per gradient.
    hyperparams: :class:`Hyperparams`; array fields give one value per replica.
    learning_rate_schedule: ``base_lr -> (step -> lr)``, e.g.
      ``functools.partial(dana_jax.paper_learning_rate, steps_per_epoch=..., num_workers=N)``;
      or a schedule in epochs, :class:`~dana_jax.learning_rates.InEpochs` (e.g.
      ``dana_jax.paper_in_epochs(num_workers=N, warmup_epochs=5)``), which needs no
      steps per epoch; None for a constant learning rate.
    algorithm_options: options of the algorithm (e.g. GA's ``penalty``).
    timing: a timing model of ``dana_jax.timing`` (homogeneous by default).
    execution: ``"steps"``, ``"blocks"`` or ``"auto"`` (:func:`default_execution`).
    block_size: K for ``"blocks"`` (default N).
    seeds: one seed per replica; a single int means one run without a replica
      axis. Each seed drives the initialisation, the data order, the
      augmentation and model keys and (unless ``timing_seeds`` is given) the timing.
    timing_seeds: the timing model's seed per replica.
    replica_execution: how the replicas share one compiled call: ``"vmap"``
      (batched), ``"loop"`` (one after another; each equals its run alone
      bitwise) or ``"auto"`` (:func:`default_replica_execution`: loop on CPU,
      vmap on GPU/TPU and whenever the mesh splits the replicas).
    augment: optional ``(inputs, key) -> inputs`` applied to each batch on device.
    mesh: a ``("replicas", "workers")`` mesh (``dana_jax.make_mesh``), or None for
      one device. ``replicas`` must divide the number of replicas; ``workers`` > 1
      needs ``execution="blocks"`` (blocks are padded to a multiple of it with
      no-ops) or a synchronous algorithm whose rounds it divides.
    worker_program: what a worker computes per job (``dana_jax.workers``;
      default one gradient).
    restart_rule: a :data:`dana_jax.schedule.RestartRule` making restart events.
    round_rule: the rounds of a synchronous algorithm (default SSGD's).
      ``worker_program``, ``restart_rule`` and ``round_rule`` come from the
      algorithm's options where it has them (``ringmaster``, ``msync``,
      ``rennala``, ``async_local_sgd``; :class:`~dana_jax.algorithms.EventPlan`);
      passing one too is refused.
    environment: the run's :class:`~dana_jax.environment.Environment` (docs/spec.md §8:
      links, availability, speed changes; ``make_environment(...)``), or None (every part
      at its default: §1–§7). Its ``compute`` part is the timing model, so ``timing``
      is then not given.

  Raises:
    ConfigError: for any argument of the wrong type or value, one line naming it;
      also (as :class:`~dana_jax.engine.memory.MemoryLimitError`, a ConfigError and
      a MemoryError) when the carried state, or the schedule's part that grows with
      N, cannot fit (:func:`~dana_jax.engine.memory.check_size`) — estimated from
      the sizes, before the state, the schedule or the device data exist.
      :func:`~dana_jax.simulate` checks the schedules of its ``num_steps`` the same way.

  Attributes:
    spec: the :class:`~dana_jax.RunSpec` of the arguments other than the model, the data,
      the hyperparameters, the learning-rate schedule and ``augment``.
  """

  def __init__(self, model: Model, algorithm, train_inputs, train_labels, *,
               num_workers: int, batch_size: int, hyperparams: Hyperparams | None = None,
               learning_rate_schedule: Callable | None = None,
               algorithm_options: dict | None = None, timing=None,
               execution: str = "auto", block_size: int | None = None,
               seeds: int | Sequence[int] = 0, timing_seeds: Sequence[int] | None = None,
               replica_execution: str = "auto", augment: Callable | None = None,
               mesh: jax.sharding.Mesh | None = None,
               worker_program=None, restart_rule=None, round_rule=None, environment=None):
    arguments.check_simulator(model, train_inputs, train_labels, hyperparams=hyperparams,
                              learning_rate_schedule=learning_rate_schedule, augment=augment)
    host = isinstance(train_inputs, HostData)
    num_examples = len(train_inputs) if host else int(np.shape(train_inputs)[0])
    self.spec = spec = RunSpec.create(
        algorithm, num_workers=num_workers, batch_size=batch_size, num_examples=num_examples,
        algorithm_options=algorithm_options, timing=timing, execution=execution,
        block_size=block_size, seeds=seeds, timing_seeds=timing_seeds,
        replica_execution=replica_execution, mesh=mesh, worker_program=worker_program,
        restart_rule=restart_rule, round_rule=round_rule, environment=environment)
    self.hyperparams = check_hyperparams(hyperparams or Hyperparams(), spec.num_replicas)
    self.model, self.learning_rate_schedule, self.augment = model, learning_rate_schedule, augment
    # The training HostData, or None when the arrays go to the device.
    self.host_data = train_inputs if host else None
    self.placement = Placement(spec.mesh, spec.single, spec.replica_execution)
    self.data_nbytes = 0 if host else _nbytes(train_inputs) + _nbytes(train_labels)
    # The data fit the model (after the options: a bad option never touches the model).
    compatibility.check_data(model, train_inputs, train_labels, what="train", augment=augment)
    if model is not None:  # a message's bytes: P values (docs/spec.md §8.1, §8.5)
      params, _ = jax.eval_shape(model.init, jax.random.key(0))
      count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))
      self.spec = spec = dataclasses.replace(spec, num_params=count)
    # The state and the schedule's per-worker part fit, before either (or the data) exists.
    memory.check_size(spec, model, host_data=host, data_nbytes=self.data_nbytes)
    if host:
      self.train_inputs, self.train_labels = train_inputs, None
    else:
      self.train_inputs, self.train_labels = self.placement.put_data(train_inputs, train_labels)
    self.orders = _data_orders(spec, train_inputs if host else None, train_labels)
    self.parts = step.make_parts(spec, model, learning_rate_schedule, augment, host,
                                 self.placement.over_workers)
    self._chunk_fns: dict = {}

  def device_data(self):
    """The training arrays passed into every compiled function (None for HostData)."""
    return None if self.host_data is not None else (self.train_inputs, self.train_labels)

  def init(self) -> SimState:
    """The initial state (stacked over replicas unless ``seeds`` was an int); checks first
    that it fits (:func:`~dana_jax.engine.memory.check_memory`)."""
    memory.check_memory(self.spec, self.model, data_nbytes=self.data_nbytes)
    keys = self.placement.stack([jax.random.key_data(
        jax.random.fold_in(jax.random.key(s), INIT_STREAM)) for s in self.spec.seeds])

    def fn(key, hp, data):
      return initial_state(self.parts, self.spec, jax.random.wrap_key_data(key), hp)

    return self.placement.compile(fn, num_args=2)(*self.placement.place((keys, self.hp())),
                                                  self.device_data())

  def hp(self):
    """The hyperparameters of every replica, stacked (a dict of [R] arrays)."""
    return self.placement.stack([{k: v[r] for k, v in self.hyperparams.items()}
                                 for r in range(self.spec.num_replicas)])

  @functools.cached_property
  def data_keys(self):
    return self.placement.stack([np.asarray(jax.random.key_data(
        jax.random.fold_in(jax.random.key(s), DATA_STREAM))) for s in self.spec.seeds])

  def chunk_fn(self):
    """The compiled chunk: ``(state, xs, data_key, hp, valid, data) -> (state, summary)``."""
    if "chunk" not in self._chunk_fns:
      self._chunk_fns["chunk"] = self.placement.compile(
          chunk(self.parts, self.spec), num_args=5, views=(replica_view, merge_view),
          donate_argnums=(0,))
    return self._chunk_fns["chunk"]

  def run_chunk(self, state, schedules, start, stop, rows=None, inputs=None):
    """Advances ``state`` from master step ``start`` to ``stop``; returns (state, summary).

    ``inputs``: this chunk's :func:`~dana_jax.engine.plan.chunk_inputs`, if already
    computed.
    """
    xs, valid = inputs or plan.chunk_inputs(self.spec, schedules, start, stop, rows,
                                            orders=self.orders, host_data=self.host_data)
    args = self.placement.place((xs, self.data_keys, self.hp(), valid))
    return self.chunk_fn()(state, *args, self.device_data())

  def __getattr__(self, name):
    """Deprecated (for one release): the RunSpec's fields (``simulator.spec.<name>``) and
    the methods now functions of the spec (``steps_for_epochs``, ``check_timing``,
    ``schedules``, ``default_chunk_steps``, ``memory_estimate``, ``check_memory``,
    ``check_size``), read on the Simulator."""
    if name.startswith("_") or "spec" not in self.__dict__:
      raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
    spec, old = self.__dict__["spec"], _DEPRECATED.get(name)
    if old is None and name not in RunSpec.__dataclass_fields__:
      raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
    new = old[0] if old else f"simulator.spec.{name}"
    warnings.warn(f"Simulator.{name} is deprecated: use {new}", DeprecationWarning,
                  stacklevel=2)
    return old[1](self) if old else getattr(spec, name)


def _example_nbytes(sim):
  return None if sim.host_data is None else sim.host_data.example_nbytes()


# Deprecated Simulator methods: (what replaces it, the Simulator -> the callable).
_DEPRECATED = {
    "steps_for_epochs": ("simulator.spec.steps_for_epochs", lambda sim: sim.spec.steps_for_epochs),
    "check_timing": ("dana_jax.check_timing(simulator.spec, num_steps)",
                     lambda sim: functools.partial(plan.check_timing, sim.spec)),
    "schedules": ("dana_jax.engine.plan.schedules(simulator.spec, ...)",
                  lambda sim: functools.partial(plan.schedules, sim.spec)),
    "default_chunk_steps": (
        "dana_jax.engine.plan.default_chunk_steps(simulator.spec, ...)",
        lambda sim: lambda: plan.default_chunk_steps(sim.spec, _example_nbytes(sim))),
    "memory_estimate": ("dana_jax.engine.memory.memory_estimate(simulator.spec, model)",
                        lambda sim: lambda: memory.memory_estimate(sim.spec, sim.model)),
    "check_memory": (
        "dana_jax.engine.memory.check_memory(simulator.spec, model, ...)",
        lambda sim: lambda available=None: memory.check_memory(
            sim.spec, sim.model, data_nbytes=sim.data_nbytes, available=available)),
    "check_size": (
        "dana_jax.check_size(simulator.spec, model, ...)",
        lambda sim: lambda num_steps=None, chunk_steps=None, available_host=None:
            memory.check_size(sim.spec, sim.model, num_steps=num_steps,
                              chunk_steps=chunk_steps, host_data=sim.host_data is not None,
                              data_nbytes=sim.data_nbytes, example_nbytes=_example_nbytes(sim),
                              available_host=available_host)),
}


def _nbytes(array) -> int:
  nbytes = getattr(array, "nbytes", None)
  return int(np.asarray(array).nbytes if nbytes is None else nbytes)


def initial_state(parts: step.Parts, spec: RunSpec, key, hp) -> SimState:
  """θ_0 and the optimizer state; every worker has read θ_0 (or DANA's look-ahead)."""
  params, model_state = parts.model.init(key)
  opt_state = parts.optimizer(hp).init(params)
  zero = jnp.zeros([], jnp.int32)
  if spec.synchronous:
    return SimState(zero, params, opt_state, model_state, None, None)

  def stack(tree):
    return jax.tree.map(lambda p: jnp.broadcast_to(p, (spec.num_workers,) + p.shape), tree)

  return SimState(zero, params, opt_state, model_state,
                  stack(_transforms.read_params(opt_state, params)),
                  jnp.zeros([spec.num_workers], jnp.int32), stack(parts.program.init(params)))


def chunk(parts: step.Parts, spec: RunSpec):
  """One replica's chunk: the loop of its execution, then the summary of its metrics."""
  if spec.synchronous:
    runner = functools.partial(step.run_rounds, parts)
  elif spec.execution == "blocks":
    runner = functools.partial(step.run_blocks, parts)
  else:
    runner = functools.partial(step.run_steps, parts, masked=spec.masked_steps)

  def one(state, xs, data_key, hp, valid, data):
    state, values = runner(state, xs, jax.random.wrap_key_data(data_key), hp, data)
    summary = _metrics.summarize(parts.metrics, values, valid, spec.num_workers)
    summary["nonfinite"] = summary["nonfinite"] | ~all_finite(state.params)
    return state, summary

  return one


def _data_orders(spec, host_data, train_labels):
  """Each replica's data order: §1's global stream, or the per-worker streams of the
  environment's placement (docs/spec.md §8.4)."""
  from dana_jax.environment.placement import GlobalData, worker_data_order
  placement = getattr(getattr(spec, "environment", None), "placement", GlobalData())
  if getattr(placement, "is_default", True):
    return [DataOrder(spec.num_examples, spec.batch_size, s) for s in spec.seeds]
  from dana_jax.environment.placement import PLACEMENTS
  name = next((n for n, cls in PLACEMENTS.items() if type(placement) is cls),
              type(placement).__name__)
  if spec.synchronous:
    raise ConfigError(f"environment.placement.name={name!r} is not allowed with "
                      f"{spec.algorithm.name}: per-worker data is not yet supported for "
                      "synchronous rounds; use an asynchronous algorithm or 'global'")
  labels = (np.asarray(train_labels) if host_data is None
            else np.asarray(getattr(host_data, "labels", None)))
  if labels.ndim == 0:
    raise ConfigError(f"environment.placement.name={name!r} is not allowed here: a "
                      "per-worker placement needs the training labels (a HostData with a "
                      ".labels array)")
  return [worker_data_order(placement, labels, spec.num_workers, spec.batch_size, s)
          for s in spec.seeds]

