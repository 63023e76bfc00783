"""The :class:`Simulator`: one simulation's configuration, schedule and compiled chunks.

It validates the configuration (each rule once, here or in the piece it
belongs to), builds the schedules (``dana_jax.schedule``), and wires the
traced pieces (``step``) to the model, the worker program (``workers``), the
optimizer and the placement (``placement``). The host loop is
:func:`dana_jax.simulate` (``loop``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax import algorithms as _algorithms
from dana_jax import schedule as _schedule
from dana_jax import sharding as _sharding
from dana_jax import timing as _timing
from dana_jax import transforms as _transforms
from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.engine import arguments, checks, memory, plan, step
from dana_jax.engine.core import (
  EXECUTIONS,
  REPLICA_EXECUTIONS,
  Hyperparams,
  Model,
  SimState,
  all_finite,
  check_hyperparams,
  default_execution,
  default_replica_execution,
  float_dtype,
)
from dana_jax.engine.data import DataOrder, HostData
from dana_jax.engine.placement import Placement
from dana_jax.engine.rows import merge_view, replica_view
from dana_jax.engine.workers import Gradient, batches_per_job
from dana_jax.learning_rates import InEpochs

# Named streams of a seed's key.
INIT_STREAM, DATA_STREAM = 1, 2


def _check_data(train_inputs, train_labels, batch_size) -> int:
  if isinstance(train_inputs, HostData):
    _require(train_labels is None, "train_labels", type(train_labels).__name__,
             "must be None when train_inputs is a HostData (it returns the labels)")
    num = len(train_inputs)
  else:
    num = int(np.shape(train_inputs)[0])
    _require(np.shape(train_labels)[0] == num, "train_labels", np.shape(train_labels),
             f"need one label per training example ({num})")
  _require(batch_size <= num, "batch_size", batch_size,
           f"must not exceed the number of training examples ({num})")
  return num


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
  return single, seeds, timing_seeds


def _check_mesh(placement, algorithm, execution, num_replicas, single, gradients_per_round):
  _require(num_replicas % placement.replica_devices == 0
           and (placement.replica_devices == 1 or not single), "mesh.replicas",
           placement.replica_devices, f"must divide the number of replicas ({num_replicas}; "
           "a single int seed has no replica axis)")
  if placement.worker_devices > 1 and algorithm.synchronous:
    _require(gradients_per_round % placement.worker_devices == 0, "mesh.workers",
             placement.worker_devices, f"must divide the gradients per round "
             f"({gradients_per_round}) of a synchronous algorithm")
  elif placement.worker_devices > 1:
    _require(execution == "blocks", "mesh.workers", placement.worker_devices,
             f"shards a block's gradients: needs execution='blocks' (got {execution!r})")


def _replica_execution(given, mesh) -> str:
  _require(given in REPLICA_EXECUTIONS, "replica_execution", given,
           f"choose one of {REPLICA_EXECUTIONS}")
  split = _sharding.axis_size(mesh, "replicas") > 1
  if given == "auto":
    return "vmap" if split else default_replica_execution()
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
  (:func:`~dana_jax.engine.workers.batches_per_job`). The algorithm's own rules unless
  ``worker_program`` / ``round_rule`` are given; usable before a simulator exists (an
  experiment sizes its epochs with it)."""
  entry = _algorithms.get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
  event_plan = entry.event_plan(int(num_workers), dict(options or {}))
  if entry.synchronous:
    rule = round_rule or event_plan.round_rule or _schedule.SynchronousRule()
    return rule.gradients(int(num_workers))
  program = worker_program or event_plan.worker_program or Gradient()
  timing = _timing.homogeneous() if timing is None else timing
  return batches_per_job(program, timing, int(num_workers), timing_seeds)


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
    worker_program: what a worker computes per job (``dana_jax.engine.workers``;
      default one gradient).
    restart_rule: a :data:`dana_jax.schedule.RestartRule` making restart events.
    round_rule: the rounds of a synchronous algorithm (default SSGD's).
      ``worker_program``, ``restart_rule`` and ``round_rule`` come from the
      algorithm's options where it has them (``ringmaster``, ``msync``,
      ``rennala``, ``async_local_sgd``; :class:`~dana_jax.algorithms.EventPlan`);
      passing one too is refused.

  Raises:
    ConfigError: for any argument of the wrong type or value, one line naming it;
      also (as :class:`~dana_jax.engine.memory.MemoryLimitError`, a ConfigError and
      a MemoryError) when the carried state, or the schedule's part that grows with
      N, cannot fit (:func:`~dana_jax.engine.memory.check_size`) — estimated from
      the sizes, before the state, the schedule or the device data exist.
      :func:`~dana_jax.simulate` checks the schedules of its ``num_steps`` the same way.
  """

  def __init__(self, model: Model, algorithm, train_inputs, train_labels, *,
               num_workers: int, batch_size: int, hyperparams: Hyperparams | None = None,
               learning_rate_schedule: Callable | None = None,
               algorithm_options: dict | None = None, timing=None,
               execution: str = "auto", block_size: int | None = None,
               seeds: int | Sequence[int] = 0, timing_seeds: Sequence[int] | None = None,
               replica_execution: str = "auto", augment: Callable | None = None,
               mesh: jax.sharding.Mesh | None = None,
               worker_program=None, restart_rule=None, round_rule=None):
    arguments.check_simulator(
        model, algorithm, train_inputs, train_labels, hyperparams=hyperparams,
        learning_rate_schedule=learning_rate_schedule, algorithm_options=algorithm_options,
        seeds=seeds, timing_seeds=timing_seeds, augment=augment,
        worker_program=worker_program, restart_rule=restart_rule, round_rule=round_rule)
    self.algorithm = (_algorithms.get_algorithm(algorithm) if isinstance(algorithm, str)
                      else algorithm)
    self.options = dict(algorithm_options or {})
    block_size = num_workers if block_size is None else block_size
    for field, value in (("num_workers", num_workers), ("batch_size", batch_size),
                         ("block_size", block_size)):
      _require(is_int(value, 1), field, value, "need an integer ≥ 1")
    _require(execution in EXECUTIONS, "execution", execution, f"choose one of {EXECUTIONS}")
    self.execution = default_execution() if execution == "auto" else execution
    self.num_examples = _check_data(train_inputs, train_labels, batch_size)
    self.host_data = isinstance(train_inputs, HostData)
    self.single, self.seeds, self.timing_seeds = _check_seeds(seeds, timing_seeds)
    self.num_replicas = len(self.seeds)
    self.hyperparams = check_hyperparams(hyperparams or Hyperparams(), self.num_replicas)
    self.synchronous = self.algorithm.synchronous
    self.algorithm.check_options(self.options)
    # The algorithm's own rules (spec §6); each checks its options here, before compiling.
    event_plan = self.algorithm.event_plan(int(num_workers), self.options)
    self.algorithm.optimizer(0.1, 0.9, 1e-4, int(num_workers), self.options)
    restart_rule = _one_rule("restart_rule", restart_rule, event_plan.restart_rule)
    round_rule = _one_rule("round_rule", round_rule, event_plan.round_rule)
    worker_program = _one_rule("worker_program", worker_program, event_plan.worker_program)
    self.discard_rule = event_plan.discard_rule
    self.round_rule = round_rule or _schedule.SynchronousRule()
    self.gradients_per_round = self.round_rule.gradients(num_workers)
    _sharding.validate_mesh(mesh)
    self.replica_execution = _replica_execution(replica_execution, mesh)
    self.mesh = mesh
    self.placement = Placement(mesh, self.single, self.replica_execution)
    _check_mesh(self.placement, self.algorithm, self.execution, self.num_replicas, self.single,
                self.gradients_per_round)
    self.timing = _timing.homogeneous() if timing is None else timing
    _schedule.validate_schedule_args(self.timing, num_workers, 1, block_size)
    self.model, self.num_workers, self.batch_size = model, int(num_workers), int(batch_size)
    self.block_size = int(block_size) if self.execution == "blocks" else 1
    # Blocks hold ≤ block_size events, padded with no-ops to a multiple of the worker devices.
    workers = self.placement.worker_devices
    self.block_width = -(-self.block_size // workers) * workers
    self.program = worker_program or Gradient()
    self.restart_rule = restart_rule
    self.masked_steps = restart_rule is not None or self.discard_rule is not None
    self.learning_rate_schedule, self.augment = learning_rate_schedule, augment
    self.data_nbytes = 0 if self.host_data else _nbytes(train_inputs) + _nbytes(train_labels)
    # The data fit the model (after the options: a bad option never touches the model).
    checks.check_data(model, train_inputs, train_labels, what="train", augment=augment)
    # The state and the schedule's per-worker part fit, before either (or the data) exists.
    memory.check_size(self)
    if self.host_data:
      self.train_inputs, self.train_labels = train_inputs, None
    else:
      self.train_inputs, self.train_labels = self.placement.put_data(train_inputs, train_labels)
    self.orders = [DataOrder(self.num_examples, self.batch_size, s) for s in self.seeds]
    # H_i per worker and replica (DyLU; None: every job takes H batches).
    self.job_steps = [None if self.synchronous else
                      self.program.steps_per_worker(self.timing, num_workers, s)
                      for s in self.timing_seeds]
    # Batches per master step: G per round, H per job; one epoch is a pass of the stream.
    per_step = self.batches_per_step
    per_epoch = self.num_examples // self.batch_size
    self.steps_per_epoch = per_epoch // per_step if per_epoch % per_step == 0 else (
        per_epoch / per_step)
    self._chunk_fns: dict = {}

  @property
  def batches_per_step(self) -> int | float:
    """Stream batches per master step (:func:`batches_per_step`)."""
    return batches_per_step(self.algorithm, self.num_workers, self.options, self.timing,
                            self.timing_seeds, worker_program=self.program,
                            round_rule=self.round_rule)

  def steps_for_epochs(self, epochs: float) -> int:
    """Master steps (rounds) of ``epochs`` passes of the stream, floored (spec §2.9)."""
    return max(1, int(np.floor(epochs * self.steps_per_epoch + 1e-9)))

  def learning_rate_fn(self, base):
    if self.learning_rate_schedule is None:
      return lambda count: jnp.asarray(base, float_dtype())
    if isinstance(self.learning_rate_schedule, InEpochs):  # in epochs: ours per epoch
      return self.learning_rate_schedule.at(base, self.steps_per_epoch)
    return self.learning_rate_schedule(base)

  def optimizer(self, hp):
    """The optimizer of one replica, built from (possibly traced) hyperparameters."""
    return self.algorithm.optimizer(self.learning_rate_fn(hp["learning_rate"]),
                                    hp["momentum"], hp["weight_decay"], self.num_workers,
                                    self.options)

  def schedules(self, num_steps: int, chunk_steps: int | None = None) -> list:
    """One schedule per replica (rounds if synchronous), blocks ending at chunk ends."""
    return plan.schedules(self, num_steps, chunk_steps)

  def check_timing(self, num_steps: int) -> list[np.ndarray]:
    """The batch times of each worker [N] that ``num_steps`` master steps (rounds) use,
    per replica, from the schedules alone (nothing is compiled); a timing trace that does
    not cover them is refused here (ConfigError naming how many it needs). None for a
    round rule of the ``durations`` form, which does not count them."""
    per_job = 1 if self.synchronous else self.program.batches_per_job
    return [None if sched.jobs_used is None else
            np.asarray(sched.jobs_used) * (per_job if steps is None else np.asarray(steps))
            for sched, steps in zip(self.schedules(num_steps), self.job_steps, strict=True)]

  def examples(self, indices: np.ndarray):
    """What the compiled chunk receives for a batch: its indices, or (HostData) its examples."""
    return self.train_inputs.load(indices) if self.host_data else indices

  def device_data(self):
    """The training arrays passed into every compiled function (None for HostData)."""
    return None if self.host_data else (self.train_inputs, self.train_labels)

  @functools.cached_property
  def parts(self) -> step.Parts:
    return step.Parts(self.model, self.program, self.optimizer,
                      lambda hp: self.learning_rate_fn(hp["learning_rate"]),
                      functools.partial(_batch, self.host_data, self.augment),
                      self.placement.over_workers)

  def init(self) -> SimState:
    """The initial state (stacked over replicas unless ``seeds`` was an int); checks first
    that it fits (:meth:`check_memory`)."""
    self.check_memory()
    keys = self.placement.stack([jax.random.key_data(
        jax.random.fold_in(jax.random.key(s), INIT_STREAM)) for s in self.seeds])
    fn = lambda key, hp, data: initial_state(self, jax.random.wrap_key_data(key), hp)  # noqa: E731
    return self.placement.compile(fn, num_args=2)(*self.placement.place((keys, self.hp())),
                                                  self.device_data())

  def hp(self):
    return self.placement.stack([{k: v[r] for k, v in self.hyperparams.items()}
                                 for r in range(self.num_replicas)])

  @functools.cached_property
  def data_keys(self):
    return self.placement.stack([np.asarray(jax.random.key_data(
        jax.random.fold_in(jax.random.key(s), DATA_STREAM))) for s in self.seeds])

  def chunk_fn(self):
    """The compiled chunk: ``(state, xs, data_key, hp, valid, data) -> (state, summary)``."""
    if "chunk" not in self._chunk_fns:
      self._chunk_fns["chunk"] = self.placement.compile(
          _chunk(self), num_args=5, views=(replica_view, merge_view),
          donate_argnums=(0,))
    return self._chunk_fns["chunk"]

  def chunk_inputs(self, schedules, start: int, stop: int, rows: int | None = None):
    """Host-side scan inputs for master steps ``start..stop-1`` of every replica."""
    return plan.chunk_inputs(self, schedules, start, stop, rows)

  def rows_per_chunk(self, schedules, num_steps: int, chunk_steps: int | None = None):
    """The static number of scan rows per chunk (see :func:`plan.rows_per_chunk`)."""
    return plan.rows_per_chunk(self, schedules, plan.chunk_ends(num_steps, chunk_steps,
                                                                self.steps_per_epoch))

  blocks_per_chunk = rows_per_chunk

  def run_chunk(self, state, schedules, start, stop, rows=None, inputs=None):
    """Advances ``state`` from master step ``start`` to ``stop``; returns (state, summary).

    ``inputs``: this chunk's :meth:`chunk_inputs`, if already computed.
    """
    xs, valid = inputs or self.chunk_inputs(schedules, start, stop, rows)
    args = self.placement.place((xs, self.data_keys, self.hp(), valid))
    return self.chunk_fn()(state, *args, self.device_data())

  def default_chunk_steps(self) -> int | None:
    """One epoch (see :func:`plan.default_chunk_steps`)."""
    return plan.default_chunk_steps(self)

  memory_estimate = memory.memory_estimate
  check_memory = memory.check_memory
  check_size = memory.check_size


def _nbytes(array) -> int:
  nbytes = getattr(array, "nbytes", None)
  return int(np.asarray(array).nbytes if nbytes is None else nbytes)


def _batch(host_data, augment, examples, batch, data_key, data):
  """A batch's (inputs, labels) on the device, augmented with a key of its batch number."""
  inputs, labels = examples if host_data else (data[0][examples], data[1][examples])
  if augment is not None:
    key = jax.random.fold_in(jax.random.fold_in(data_key, step.AUGMENT_STREAM), batch)
    inputs = augment(inputs, key)
  return inputs, labels


def initial_state(sim: Simulator, key, hp) -> SimState:
  """θ_0 and the optimizer state; every worker has read θ_0 (or DANA's look-ahead)."""
  params, model_state = sim.model.init(key)
  opt_state = sim.optimizer(hp).init(params)
  zero = jnp.zeros([], jnp.int32)
  if sim.synchronous:
    return SimState(zero, params, opt_state, model_state, None, None)
  stack = lambda tree: jax.tree.map(  # noqa: E731
      lambda p: jnp.broadcast_to(p, (sim.num_workers,) + p.shape), tree)
  return SimState(zero, params, opt_state, model_state,
                  stack(_transforms.read_params(opt_state, params)),
                  jnp.zeros([sim.num_workers], jnp.int32), stack(sim.program.init(params)))


def _chunk(sim: Simulator):
  """One replica's chunk: the loop of its execution, then the summary."""
  if sim.synchronous:
    runner = functools.partial(step.run_rounds, sim.parts)
  elif sim.execution == "blocks":
    runner = functools.partial(step.run_blocks, sim.parts)
  else:
    runner = functools.partial(step.run_steps, sim.parts, masked=sim.masked_steps)

  def one(state, xs, data_key, hp, valid, data):
    state, metrics = runner(state, xs, jax.random.wrap_key_data(data_key), hp, data)
    summary = step.summarize(metrics, valid, sim.num_workers)
    summary["nonfinite"] = summary["nonfinite"] | ~all_finite(state.params)
    return state, summary

  return one
