"""The exact asynchronous-SGD simulator: one compiled program per chunk of steps.

SPEC §1 event semantics, DESIGN.md architecture. A master step t applies the
gradient of the arriving worker k_t — computed on what k read (its row of the
read-copy stack) with the batch of its dispatch — folds that worker's
BatchNorm statistics into the master's, and lets k read again (θ, or DANA's
look-ahead).

A gradient depends only on what its worker read and on its batch, so *when*
it is computed is free (DESIGN.md: only the order in which gradients are
computed changes). The engine computes it when its worker arrives, from the
stored read copy: then no pending gradient or statistics need be stored
(half the per-worker memory of computing it at the read, and measured 30%
faster for a 270k-parameter MLP on XLA:CPU, docs/benchmarks.md).

Two executions with the same semantics:

* ``execution="steps"``: ``lax.scan`` over master steps; each computes the
  arriving worker's gradient, then applies it.
* ``execution="blocks"``: ``lax.scan`` over blocks of consecutive steps whose
  workers are distinct. Every gradient applied in a block was read before it,
  so the block's gradients are computed first, together, with one ``vmap``
  over the worker axis, and then applied in order (an inner scan).

The state of one run is a :class:`SimState`; R independent runs (seeds,
hyperparameters) are a leading replica axis on every leaf and one ``vmap``.

Training data either lives in device memory (arrays; each batch is gathered
by index inside the compiled chunk) or stays on the host (:class:`HostData`,
e.g. ImageNet): then each chunk's batches are loaded on the host and passed to
the chunk with its schedule, the next chunk's while the current one runs.
The engine does not know which algorithm runs: it hands ``lag``,
``stale_params`` and ``worker`` to the optimizer it is given.

With a ``mesh`` (``dana_jax.make_mesh``) the replica axis is split over the
mesh's ``replicas`` devices and a block's (or a synchronous step's) gradients
over its ``workers`` devices (``dana_jax.sharding``); results equal the
single-device ones (tests/test_sharding.py).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import time as _time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dana_jax import algorithms as _algorithms
from dana_jax import schedule as _schedule
from dana_jax import sharding as _sharding
from dana_jax import transforms as _transforms
from dana_jax.transforms._common import index_after, set_row, values_after

EXECUTIONS = ("auto", "steps", "blocks")


def default_execution(backend: str | None = None) -> str:
  """The execution ``"auto"`` resolves to on a backend.

  XLA:CPU: ``"steps"``. Measured (docs/benchmarks.md, 2 cores, N = 16, B = 32):
  Fashion MLP 0.91 (steps) vs 0.96 (blocks) ms per master step, Fashion CNN
  14.5 vs 64.9 ms — a vmap over weight versions turns convolutions into
  grouped convolutions, which XLA:CPU runs slowly. GPU/TPU: ``"blocks"``,
  because a larger effective batch K·B is what fills an accelerator
  (DESIGN.md); not yet measured on a GPU.
  """
  backend = backend or jax.default_backend()
  return "steps" if backend == "cpu" else "blocks"


class Model(NamedTuple):
  """What the engine needs of a model (pure functions; see ``dana_jax.models``).

  Attributes:
    init: ``key -> (params, model_state)``.
    loss: ``(params, inputs, labels, key) -> (loss, contribution)``, the training
      forward pass; ``contribution`` is what this batch adds to the running
      statistics (``{}`` for models without state).
    fold: ``(model_state, contribution) -> model_state``, applied at arrival.
    predict: ``(params, model_state, inputs) -> logits`` in evaluation mode.
  """

  init: Callable
  loss: Callable
  fold: Callable
  predict: Callable


class SimState(NamedTuple):
  """Everything a run carries from one master step to the next.

  Per-worker stacks have a leading [N] axis. For SSGD they are empty. A
  worker's gradient is computed when it arrives, from its row of
  ``read_params``, so no pending gradient is stored.
  """

  step: jax.Array                 # t, int32
  params: Any                     # master θ
  opt_state: Any
  model_state: Any                # BatchNorm running statistics of the master
  read_params: Any                # θ̂_k for every worker, [N, ...]
  read_step: jax.Array            # r_k, [N]


# Changes when SimState's layout changes; checkpoints record it (dana_jax.checkpoint).
STATE_FORMAT = 2


@dataclasses.dataclass(frozen=True)
class Hyperparams:
  """Numbers that may differ between replicas (each a scalar or an [R] array)."""

  learning_rate: Any = 0.1
  momentum: Any = 0.9
  weight_decay: Any = 1e-4


def _require(condition, field, value, allowed):
  if not condition:
    raise ValueError(f"{field}={value!r} is not allowed: {allowed}.")


class DataOrder:
  """The global data stream of SPEC §1, computed on the host.

  Each epoch is a fresh seeded permutation of the training set cut into
  ``floor(n / B)`` batches of exactly B; dispatch m takes batch m of the
  stream.
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, int(seed)
    self.batches_per_epoch = num_examples // batch_size
    self._cache: dict[int, np.ndarray] = {}

  def _epoch(self, epoch: int) -> np.ndarray:
    if epoch not in self._cache:
      if len(self._cache) > 4:
        self._cache.pop(min(self._cache))
      rng = np.random.default_rng([self.seed, 0xDA7A, epoch])
      perm = rng.permutation(self.num_examples)[: self.batches_per_epoch * self.batch_size]
      self._cache[epoch] = perm.reshape(self.batches_per_epoch, self.batch_size)
    return self._cache[epoch]

  def batches(self, dispatches: np.ndarray) -> np.ndarray:
    """Example indices [len(dispatches), B] of the given dispatch numbers."""
    dispatches = np.asarray(dispatches, dtype=np.int64)
    out = np.empty(dispatches.shape + (self.batch_size,), dtype=np.int32)
    epochs = dispatches // self.batches_per_epoch
    for e in np.unique(epochs):
      sel = epochs == e
      out[sel] = self._epoch(int(e))[dispatches[sel] % self.batches_per_epoch]
    return out


class HostData:
  """A data set that stays on the host; the engine asks it for batches by index.

  For data that does not fit in device memory (ImageNet). Subclasses define
  ``__len__`` and :meth:`load`; the engine calls ``load`` with each chunk's
  example indices (the same global data order as for arrays, SPEC §1) and
  passes the result into the compiled chunk, so a run gives the same result
  whether its data is an array or a :class:`HostData` holding that array.
  """

  def __len__(self) -> int:
    raise NotImplementedError

  def load(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Examples ``indices`` (any shape S) as ``(inputs [*S, ...], labels [*S])``."""
    raise NotImplementedError

  def example_nbytes(self) -> int:
    """Bytes of one example's inputs as :meth:`load` returns them."""
    inputs, _ = self.load(np.zeros([1], np.int64))
    return int(inputs.nbytes)


class ArrayData(HostData):
  """Host-resident numpy arrays as :class:`HostData` (tests, or data kept off the device)."""

  def __init__(self, inputs, labels):
    self.inputs, self.labels = np.asarray(inputs), np.asarray(labels)
    _require(self.labels.shape[:1] == self.inputs.shape[:1], "labels", self.labels.shape,
             f"need one label per example ({self.inputs.shape[0]})")

  def __len__(self):
    return self.inputs.shape[0]

  def load(self, indices):
    return self.inputs[indices], self.labels[indices]


# Host bytes of training inputs per chunk when HostData chooses the chunk length.
HOST_CHUNK_BYTES = 1 << 30


def _available_memory() -> int | None:
  """The default device's memory limit in bytes; on CPU the host's RAM; None if unknown."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def _tree_rms(tree) -> jax.Array:
  leaves = jax.tree_util.tree_leaves(tree)
  total = sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves)
  return jnp.sqrt(total / sum(x.size for x in leaves))


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _take(tree, index):
  return jax.tree.map(lambda x: x[index], tree)


class Simulator:
  """Simulates one parameter server and N asynchronous workers (SPEC §1).

  Args:
    model: a :class:`Model`.
    algorithm: a registry name (``dana_jax.ALGORITHMS``) or an
      :class:`~dana_jax.algorithms.Algorithm`.
    train_inputs, train_labels: the training set: arrays (kept on device), or a
      :class:`HostData` with ``train_labels=None`` (kept on the host, loaded
      per chunk).
    num_workers: N ≥ 1.
    batch_size: B, examples per gradient.
    hyperparams: :class:`Hyperparams`; array fields give one value per replica.
    learning_rate_schedule: ``base_lr -> (step -> lr)``, e.g.
      ``functools.partial(dana_jax.paper_schedule, steps_per_epoch=..., num_workers=N)``;
      None for a constant learning rate.
    algorithm_options: options of the algorithm (e.g. GA's ``penalty``).
    timing: a timing model of ``dana_jax.schedule`` (homogeneous by default).
    execution: ``"steps"``, ``"blocks"`` or ``"auto"`` (:func:`default_execution`).
    block_size: K for ``"blocks"`` (default N).
    seeds: one seed per replica; a single int means one run without a replica
      axis. Each seed drives the initialisation, the data order, the
      augmentation keys and (unless ``timing_seeds`` is given) the timing.
    timing_seeds: the timing model's seed per replica.
    augment: optional ``(inputs, key) -> inputs`` applied to each batch on device.
    mesh: a ``("replicas", "workers")`` mesh (``dana_jax.make_mesh``), or None for
      one device. ``replicas`` must divide the number of replicas; ``workers`` > 1
      needs ``execution="blocks"`` (blocks are padded to a multiple of it with
      no-ops) or a synchronous algorithm with N a multiple of it.
  """

  def __init__(self, model: Model, algorithm, train_inputs, train_labels, *,
               num_workers: int, batch_size: int, hyperparams: Hyperparams = Hyperparams(),
               learning_rate_schedule: Callable | None = None,
               algorithm_options: dict | None = None,
               timing: _schedule.TimingModel | None = None,
               execution: str = "auto", block_size: int | None = None,
               seeds: int | Sequence[int] = 0, timing_seeds: Sequence[int] | None = None,
               augment: Callable | None = None, mesh: jax.sharding.Mesh | None = None):
    if isinstance(algorithm, str):
      algorithm = _algorithms.get_algorithm(algorithm)
    self.algorithm = algorithm
    self.options = dict(algorithm_options or {})
    _require(isinstance(num_workers, (int, np.integer)) and num_workers >= 1, "num_workers",
             num_workers, "need an integer ≥ 1")
    _require(isinstance(batch_size, (int, np.integer)) and batch_size >= 1, "batch_size",
             batch_size, "need an integer ≥ 1")
    _require(execution in EXECUTIONS, "execution", execution, f"choose one of {EXECUTIONS}")
    if execution == "auto":
      execution = default_execution()
    block_size = num_workers if block_size is None else block_size
    _require(isinstance(block_size, (int, np.integer)) and block_size >= 1, "block_size",
             block_size, "need an integer ≥ 1")
    self.host_data = isinstance(train_inputs, HostData)
    if self.host_data:
      _require(train_labels is None, "train_labels", type(train_labels).__name__,
               "must be None when train_inputs is a HostData (it returns the labels)")
      num_examples = len(train_inputs)
    else:
      num_examples = int(np.shape(train_inputs)[0])
      _require(np.shape(train_labels)[0] == num_examples, "train_labels",
               np.shape(train_labels), f"need one label per training example ({num_examples})")
    _require(batch_size <= num_examples, "batch_size", batch_size,
             f"must not exceed the number of training examples ({num_examples})")
    self.single = isinstance(seeds, (int, np.integer))
    self.seeds = [int(seeds)] if self.single else [int(s) for s in seeds]
    _require(len(self.seeds) >= 1, "seeds", seeds, "need at least one seed")
    self.num_replicas = len(self.seeds)
    self.timing_seeds = list(self.seeds) if timing_seeds is None else [int(s) for s in timing_seeds]
    _require(len(self.timing_seeds) == self.num_replicas, "timing_seeds", timing_seeds,
             f"need one per replica ({self.num_replicas})")
    self.hyperparams = self._check_hyperparams(hyperparams)
    _sharding.validate_mesh(mesh)
    self.mesh = mesh
    self.replica_devices = _sharding.axis_size(mesh, "replicas")
    self.worker_devices = _sharding.axis_size(mesh, "workers")
    _require(self.num_replicas % self.replica_devices == 0 and
             (self.replica_devices == 1 or not self.single), "mesh.replicas",
             self.replica_devices, f"must divide the number of replicas ({self.num_replicas}; "
             "a single int seed has no replica axis)")
    if self.worker_devices > 1:
      if algorithm.synchronous:
        _require(num_workers % self.worker_devices == 0, "mesh.workers", self.worker_devices,
                 f"must divide num_workers ({num_workers}) for a synchronous algorithm")
      else:
        _require(execution == "blocks", "mesh.workers", self.worker_devices,
                 f"shards a block's gradients: needs execution='blocks' (got {execution!r})")
    self.timing = _schedule.homogeneous() if timing is None else timing
    _schedule.validate_schedule_args(self.timing, num_workers, 1, block_size)
    unknown = sorted(set(self.options) - set(algorithm.options()))
    _require(not unknown, "algorithm_options", unknown,
             f"{algorithm.name!r} takes {list(algorithm.options()) or 'no options'}")

    self.model = model
    self.num_workers = int(num_workers)
    self.batch_size = int(batch_size)
    self.execution = execution
    self.block_size = int(block_size) if execution == "blocks" else 1
    # Blocks hold ≤ block_size steps, padded with no-ops to a multiple of the worker devices.
    self.block_width = -(-self.block_size // self.worker_devices) * self.worker_devices
    self.synchronous = algorithm.synchronous
    self.learning_rate_schedule = learning_rate_schedule
    self.augment = augment
    if self.host_data:
      self.train_inputs, self.train_labels = train_inputs, None
    elif mesh is None:
      self.train_inputs = jnp.asarray(train_inputs)
      self.train_labels = jnp.asarray(train_labels)
    else:  # a copy on every device of the mesh
      self.train_inputs, self.train_labels = _sharding.put(
          (np.asarray(train_inputs), np.asarray(train_labels)), _sharding.sharding(mesh))
    self.num_examples = num_examples
    self.orders = [DataOrder(num_examples, self.batch_size, s) for s in self.seeds]
    self.steps_per_epoch = num_examples // self.batch_size
    if self.synchronous:
      self.steps_per_epoch = max(1, self.steps_per_epoch // self.num_workers)
    self._chunk_fns: dict = {}

  # ------------------------------------------------------------------ config

  def _check_hyperparams(self, hp: Hyperparams) -> dict:
    out = {}
    for name in ("learning_rate", "momentum", "weight_decay"):
      value = np.asarray(getattr(hp, name), dtype=np.float32)
      _require(value.ndim == 0 or (value.ndim == 1 and len(value) == self.num_replicas),
               f"hyperparams.{name}", getattr(hp, name),
               f"need a scalar or one value per replica ({self.num_replicas})")
      _require(bool(np.all(np.isfinite(value))), f"hyperparams.{name}", getattr(hp, name),
               "must be finite")
      out[name] = np.broadcast_to(value, (self.num_replicas,)).copy()
    _require(bool(np.all(out["learning_rate"] > 0)), "hyperparams.learning_rate",
             hp.learning_rate, "must be > 0")
    _require(bool(np.all(np.abs(out["momentum"]) < 1)), "hyperparams.momentum", hp.momentum,
             "must lie in (−1, 1)")
    _require(bool(np.all(out["weight_decay"] >= 0)), "hyperparams.weight_decay",
             hp.weight_decay, "must be ≥ 0")
    return out

  def learning_rate_fn(self, base):
    if self.learning_rate_schedule is None:
      return lambda count: jnp.asarray(base, jnp.float32)
    return self.learning_rate_schedule(base)

  def optimizer(self, hp) -> optax.GradientTransformationExtraArgs:
    """The optimizer of one replica, built from (possibly traced) hyperparameters."""
    return self.algorithm.build(self.learning_rate_fn(hp["learning_rate"]), hp["momentum"],
                                hp["weight_decay"], self.num_workers, **self.options)

  def schedules(self, num_steps: int, chunk_steps: int) -> list[_schedule.Schedule]:
    """One arrival schedule per replica, with blocks ending at chunk ends."""
    boundaries = range(chunk_steps, num_steps, chunk_steps)
    return [_schedule.make_schedule(self.timing, self.num_workers, num_steps, seed=s,
                                    block_size=self.block_size, boundaries=boundaries)
            for s in self.timing_seeds]

  # ------------------------------------------------------------------ pieces

  # Named streams of a replica's data key, each folded with the dispatch number.
  AUGMENT_STREAM, MODEL_STREAM = 0, 1

  def _examples(self, indices: np.ndarray):
    """What the compiled chunk receives for a batch: its indices, or (HostData) its examples."""
    return self.train_inputs.load(indices) if self.host_data else indices

  def _device_data(self):
    """The training arrays passed into every compiled function (None for HostData)."""
    return None if self.host_data else (self.train_inputs, self.train_labels)

  def _batch(self, examples, dispatch, data_key, data):
    if self.host_data:
      inputs, labels = examples
    else:
      inputs, labels = data[0][examples], data[1][examples]
    if self.augment is not None:
      key = jax.random.fold_in(jax.random.fold_in(data_key, self.AUGMENT_STREAM), dispatch)
      inputs = self.augment(inputs, key)
    return inputs, labels

  def _gradient(self, params, examples, dispatch, data_key, data):
    """One worker's gradient, loss and statistics contribution on its batch."""
    inputs, labels = self._batch(examples, dispatch, data_key, data)
    key = jax.random.fold_in(jax.random.fold_in(data_key, self.MODEL_STREAM), dispatch)
    (loss, stats), grads = jax.value_and_grad(self.model.loss, has_aux=True)(
        params, inputs, labels, key)
    return grads, stats, loss

  def _gradients(self, params_stack, examples, dispatches, data_key, data):
    """Gradients of a stack of weight versions, each on its own batch.

    With a ``workers`` mesh axis the stack is split over its devices
    (``shard_map``); each device computes its share as below.
    """
    fn = self._over_worker_devices(self._local_gradients, split_params=True)
    return fn(params_stack, examples, dispatches, data_key, data)

  def _shared_gradients(self, params, examples, dispatches, data_key, data):
    """Gradients of one weight version on a stack of batches (a synchronous step)."""
    fn = self._over_worker_devices(jax.vmap(self._gradient, in_axes=(None, 0, 0, None, None)),
                                   split_params=False)
    return fn(params, examples, dispatches, data_key, data)

  def _over_worker_devices(self, fn, split_params: bool):
    """``fn(params, examples, dispatches, data_key, data)`` with its stacks split over the
    mesh's ``workers`` devices (``shard_map``); ``fn`` itself without such an axis."""
    if self.worker_devices == 1:
      return fn
    split, whole = jax.sharding.PartitionSpec("workers"), jax.sharding.PartitionSpec()
    return jax.shard_map(fn, mesh=self.mesh, out_specs=split, check_vma=False,
                         in_specs=(split if split_params else whole, split, split, whole, whole))

  def _local_gradients(self, params_stack, examples, dispatches, data_key, data):
    if jax.tree_util.tree_leaves(params_stack)[0].shape[0] == 1:
      out = self._gradient(_take(params_stack, 0), _take(examples, 0), dispatches[0], data_key,
                           data)
      return jax.tree.map(lambda x: x[None], out)
    return jax.vmap(self._gradient, in_axes=(0, 0, 0, None, None))(
        params_stack, examples, dispatches, data_key, data)

  def init_replica(self, key, hp) -> SimState:
    """θ_0 and the optimizer state; every worker has read θ_0 (or DANA's look-ahead)."""
    params, model_state = self.model.init(key)
    opt_state = self.optimizer(hp).init(params)
    if self.synchronous:
      return SimState(jnp.zeros([], jnp.int32), params, opt_state, model_state, None, None)
    n = self.num_workers
    first_read = _transforms.read_params(opt_state, params)
    read = jax.tree.map(lambda p: jnp.broadcast_to(p, (n,) + p.shape), first_read)
    return SimState(jnp.zeros([], jnp.int32), params, opt_state, model_state, read,
                    jnp.zeros([n], jnp.int32))

  def _master_step(self, tx, hp, state: SimState, worker, arrival):
    """SPEC §1 steps 1–3 for the arriving worker, given its gradient.

    ``arrival = (stale, grads, stats, loss)``: what the worker read (its row of
    ``read_params``, taken before this step) and the gradient, BatchNorm
    contribution and loss computed on it. Returns ``(state, step metrics)``.

    θ and the worker's row are updated in place; on XLA:CPU that happens
    without a copy only if every reader of the old value is computed first,
    so the writes are made to depend on the readers whose results they do not
    already need (``values_after``, ``index_after``; docs/benchmarks.md).
    """
    stale, grads, stats, loss = arrival
    t = state.step
    lag = t - state.read_step[worker]
    reference = _transforms.gap_reference(state.opt_state, state.params)
    gap_rms = _tree_rms(jax.tree.map(lambda a, b: a - b, reference, stale))
    # The optimizer updates its state in place (e.g. DANA's Σv, read by the gap): after the gap.
    updates, opt_state = tx.update(values_after(grads, gap_rms), state.opt_state, state.params,
                                   lag=lag, stale_params=stale, worker=worker)
    diagnostics = _transforms.diagnostics(opt_state)
    params = optax.apply_updates(state.params,
                                 values_after(updates, gap_rms, loss, diagnostics))
    model_state = self.model.fold(state.model_state, stats)
    read = _transforms.read_params(opt_state, params)
    slot = index_after(worker, gap_rms, loss, diagnostics)  # = worker
    metrics = {"lag": lag, "gap/rms": gap_rms, "loss": loss,
               "learning_rate": self.learning_rate_fn(hp["learning_rate"])(t), **diagnostics}
    state = state._replace(step=t + 1, params=params, opt_state=opt_state,
                           model_state=model_state,
                           read_params=set_row(state.read_params, slot, read),
                           read_step=state.read_step.at[worker].set(t + 1))
    return state, metrics

  def _run_steps(self, state, xs, data_key, hp, data):
    tx = self.optimizer(hp)

    def body(state, x):
      worker, examples, dispatch = x
      stale = _take(state.read_params, worker)
      arrival = (stale, *self._gradient(stale, examples, dispatch, data_key, data))
      return self._master_step(tx, hp, state, worker, arrival)

    return jax.lax.scan(body, state, xs)

  def _run_blocks(self, state, xs, data_key, hp, data):
    tx = self.optimizer(hp)

    def step(state, x):
      worker, arrival = x
      return self._master_step(tx, hp, state, worker, arrival)

    def skip(state, x):
      shapes = jax.eval_shape(step, state, x)[1]
      return state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def inner(state, x):
      worker, valid, arrival = x
      # A padded position is a no-op; cond (not a select) keeps it O(1) in N.
      return jax.lax.cond(valid, step, skip, state, (worker, arrival))

    def block(state, x):
      workers, valid, examples, dispatches = x
      # The block's workers are distinct and read before it (padding: worker 0,
      # its gradient unused), so their gradients are computed first, together.
      stale = _take(state.read_params, workers)
      arrivals = (stale, *self._gradients(stale, examples, dispatches, data_key, data))
      return jax.lax.scan(inner, state, (workers, valid, arrivals))

    state, metrics = jax.lax.scan(block, state, xs)
    return state, jax.tree.map(lambda m: m.reshape((-1,) + m.shape[2:]), metrics)

  def _run_synchronous(self, state, xs, data_key, hp, data):
    tx = self.optimizer(hp)

    def body(state, x):
      examples, dispatches = x
      grads, stats, loss = self._shared_gradients(state.params, examples, dispatches,
                                                  data_key, data)
      grad = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
      updates, opt_state = tx.update(grad, state.opt_state, state.params, lag=0,
                                     stale_params=state.params, worker=0)
      model_state, _ = jax.lax.scan(lambda s, c: (self.model.fold(s, c), None),
                                    state.model_state, stats, length=self.num_workers)
      metrics = {"lag": jnp.zeros([], jnp.int32), "gap/rms": jnp.zeros([]),
                 "loss": jnp.mean(loss),
                 "learning_rate": self.learning_rate_fn(hp["learning_rate"])(state.step),
                 **_transforms.diagnostics(opt_state)}
      return state._replace(step=state.step + 1, params=optax.apply_updates(state.params,
                                                                            updates),
                            opt_state=opt_state, model_state=model_state), metrics

    return jax.lax.scan(body, state, xs)

  def _summarize(self, metrics, valid):
    """Per-chunk aggregates of per-step metrics (on device)."""
    valid = valid.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(valid), 1.0)
    mean = lambda x: jnp.sum(jnp.where(valid > 0, x, 0.0)) / count  # noqa: E731
    lag = metrics["lag"]
    bins = 2 * self.num_workers + 1
    out = {"lag/mean": mean(lag.astype(jnp.float32)),
           "lag/max": jnp.max(jnp.where(valid > 0, lag, 0)),
           "lag/hist": jnp.zeros([bins], jnp.int32).at[jnp.minimum(lag, bins - 1)].add(
               valid.astype(jnp.int32)),
           "gap/rms": mean(metrics["gap/rms"]), "loss/train": mean(metrics["loss"]),
           "learning_rate": metrics["learning_rate"][jnp.argmax(jnp.cumsum(valid))]}
    for name in ("gap/normalized", "penalty/mean"):
      if name in metrics:
        out[name] = mean(metrics[name])
    out["nonfinite"] = ~jnp.all(jnp.isfinite(jnp.where(valid > 0, metrics["loss"], 0.0)))
    return out

  # ------------------------------------------------------------------ chunks

  def _chunk_fn(self, kind: str):
    if kind in self._chunk_fns:
      return self._chunk_fns[kind]
    runner = {"steps": self._run_steps, "blocks": self._run_blocks,
              "sync": self._run_synchronous}[kind]

    def one(state, xs, data_key, hp, valid, data):
      state, metrics = runner(state, xs, jax.random.wrap_key_data(data_key), hp, data)
      summary = self._summarize(metrics, valid)
      summary["nonfinite"] = summary["nonfinite"] | ~_all_finite(state.params)
      return state, summary

    self._chunk_fns[kind] = self._compile(one, num_args=5, donate_argnums=(0,))
    return self._chunk_fns[kind]

  def _replica_sharding(self):
    """Per-replica arrays: leading axis split over ``replicas`` (replicated if single)."""
    split = not self.single and "replicas" in self.mesh.axis_names
    return _sharding.sharding(self.mesh, "replicas") if split else _sharding.sharding(self.mesh)

  def _compile(self, fn, num_args: int, **jit_kwargs):
    """jit of ``fn(*per_replica_args, data)``, vmapped over replicas, placed on the mesh."""
    if not self.single:
      spmd = "replicas" if self.mesh is not None and "replicas" in self.mesh.axis_names else None
      fn = jax.vmap(fn, in_axes=(0,) * num_args + (None,), spmd_axis_name=spmd)
    if self.mesh is None:
      return jax.jit(fn, **jit_kwargs)
    per, whole = self._replica_sharding(), _sharding.sharding(self.mesh)
    return jax.jit(fn, in_shardings=(per,) * num_args + (whole,), out_shardings=per,
                   **jit_kwargs)

  def _place(self, per_replica_args):
    """Host inputs of a compiled function, on the mesh when there is one."""
    if self.mesh is None:
      return per_replica_args
    return _sharding.put(per_replica_args, self._replica_sharding())

  def _stack(self, per_replica: list):
    if self.single:
      return per_replica[0]
    return jax.tree.map(lambda *xs: np.stack(xs), *per_replica)

  def _hp(self):
    if self.single:
      return {k: v[0] for k, v in self.hyperparams.items()}
    return self.hyperparams

  def _data_keys(self):
    if not hasattr(self, "_data_keys_cache"):  # computed once: a few hundred µs of dispatches
      self._data_keys_cache = self._stack([
          np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(s), 2)))
          for s in self.seeds])
    return self._data_keys_cache

  def init(self) -> SimState:
    """The initial state (stacked over replicas unless ``seeds`` was an int).

    Checks first that it fits (:meth:`check_memory`).
    """
    self.check_memory()
    keys = self._stack([jax.random.key_data(jax.random.fold_in(jax.random.key(s), 1))
                        for s in self.seeds])

    def fn(key, hp, data):
      del data  # no gradient at the start: each is computed when its worker arrives
      return self.init_replica(jax.random.wrap_key_data(key), hp)

    return self._compile(fn, num_args=2)(*self._place((keys, self._hp())), self._device_data())

  def arrival_dispatches(self, schedule, steps: np.ndarray) -> np.ndarray:
    """The dispatch number (SPEC §1 data) of the gradient arriving at each master step.

    Worker k's first gradient has dispatch k; one read at step r − 1 (r = t − τ_t)
    has dispatch N + r − 1.
    """
    steps = np.asarray(steps)
    read = steps - schedule.lag[steps]
    return np.where(read == 0, schedule.worker[steps],
                    self.num_workers + read - 1).astype(np.int32)

  def chunk_inputs(self, schedules, start: int, stop: int, num_blocks: int | None = None):
    """Host-side scan inputs for master steps ``start..stop-1`` of every replica."""
    n, per = self.num_workers, []
    for r, order in enumerate(self.orders):
      sched = None if self.synchronous else schedules[r]
      if self.synchronous:
        dispatches = (np.arange(start, stop)[:, None] * n + np.arange(n)[None, :])
        per.append(((self._examples(order.batches(dispatches)), dispatches.astype(np.int32)),
                    np.ones(stop - start, bool)))
      elif self.execution == "steps":
        dispatches = self.arrival_dispatches(sched, np.arange(start, stop))
        per.append(((sched.worker[start:stop], self._examples(order.batches(dispatches)),
                     dispatches), np.ones(stop - start, bool)))
      else:
        first = int(np.searchsorted(sched.block_starts, start))
        last = int(np.searchsorted(sched.block_starts, stop))
        steps, mask = sched.padded_blocks(first, last)
        pad = num_blocks - steps.shape[0]
        width = self.block_width - self.block_size  # no-op columns for the worker devices
        steps = np.pad(steps, ((0, pad), (0, width)), constant_values=-1)
        mask = np.pad(mask, ((0, pad), (0, width)), constant_values=False)
        safe = np.where(mask, steps, start)
        workers = np.where(mask, sched.worker[safe], 0).astype(np.int32)
        dispatches = self.arrival_dispatches(sched, safe)
        per.append(((workers, mask, self._examples(order.batches(dispatches)), dispatches),
                    mask.ravel()))
    return self._stack([p[0] for p in per]), self._stack([p[1] for p in per])

  def blocks_per_chunk(self, schedules, num_steps: int, chunk_steps: int) -> int:
    """The largest number of blocks in any chunk of any replica (static shape)."""
    most = 1
    for sched in schedules:
      for start in range(0, num_steps, chunk_steps):
        stop = min(start + chunk_steps, num_steps)
        first = np.searchsorted(sched.block_starts, start)
        last = np.searchsorted(sched.block_starts, stop)
        most = max(most, int(last - first))
    return most

  def run_chunk(self, state, schedules, start, stop, num_blocks=None, inputs=None):
    """Advances ``state`` from master step ``start`` to ``stop``; returns (state, metrics).

    ``inputs``: this chunk's :meth:`chunk_inputs`, if already computed.
    """
    kind = "sync" if self.synchronous else self.execution
    xs, valid = inputs or self.chunk_inputs(schedules, start, stop, num_blocks)
    args = self._place((xs, self._data_keys(), self._hp(), valid))
    return self._chunk_fn(kind)(state, *args, self._device_data())

  def default_chunk_steps(self) -> int:
    """One epoch; with :class:`HostData`, at most ``HOST_CHUNK_BYTES`` of inputs per chunk."""
    if not self.host_data:
      return self.steps_per_epoch
    per_step = (self.train_inputs.example_nbytes() * self.batch_size * self.num_replicas
                * (self.num_workers if self.synchronous else 1))
    return max(1, min(self.steps_per_epoch, HOST_CHUNK_BYTES // per_step))

  def memory_estimate(self) -> dict[str, int]:
    """Bytes of the carried state per replica, by part (DESIGN.md memory model).

    ``worker_stacks``: the N read copies (empty for SSGD);
    ``optimizer``: the optimizer state (for DANA this holds N momenta). Sizes
    come from ``jax.eval_shape``, so nothing is allocated.
    """
    nbytes = lambda tree: sum(x.size * x.dtype.itemsize  # noqa: E731
                              for x in jax.tree_util.tree_leaves(tree))
    params, _ = jax.eval_shape(self.model.init, jax.random.key(0))
    hp = {k: v[0] for k, v in self.hyperparams.items()}
    opt_state = jax.eval_shape(lambda p: self.optimizer(hp).init(p), params)
    n = 0 if self.synchronous else self.num_workers
    return {"params": nbytes(params), "worker_stacks": n * nbytes(params),
            "optimizer": nbytes(opt_state), "replicas": self.num_replicas}

  def check_memory(self, available: int | None = None) -> dict[str, int]:
    """Fails early when the carried state and the device-resident data cannot fit.

    Compares ``R × (params + worker stacks + optimizer state)`` plus the
    training set (when on the device) with ``available`` bytes per device, R
    being the replicas one device holds (all of them, or their share over the
    mesh's ``replicas`` axis; the ``workers`` axis holds full copies) (default: the
    device's memory limit, or the host's RAM on CPU). Activations come on
    top and are not counted, so passing is necessary, not sufficient.

    Returns:
      The estimate, with ``"total"`` and ``"available"`` added.

    Raises:
      MemoryError: with the estimate by part and what to change.
    """
    est = self.memory_estimate()
    data = 0 if self.host_data else int(self.train_inputs.nbytes + self.train_labels.nbytes)
    per_replica = est["params"] + est["worker_stacks"] + est["optimizer"]
    replicas_here = self.num_replicas // self.replica_devices
    total = per_replica * replicas_here + data
    available = _available_memory() if available is None else int(available)
    gib = lambda b: f"{b / 2 ** 30:.2f} GiB"  # noqa: E731
    if available and total > available:
      raise MemoryError(
          f"The simulation needs at least {gib(total)} but {jax.devices()[0].device_kind} "
          f"has {gib(available)}: per replica, parameters {gib(est['params'])}, "
          f"N = {self.num_workers} read copies "
          f"{gib(est['worker_stacks'])}, optimizer state {gib(est['optimizer'])} (DANA holds "
          f"N momenta); {replicas_here} replicas per device; training data on the device "
          f"{gib(data)}. Reduce num_workers, the number of replicas (seeds, grid cells) or the "
          "model, split the replicas over devices (dana_jax.make_mesh), keep the training "
          "data on the host (dana_jax.HostData), or use a device with more memory.")
    return {**est, "total": total, "available": available}


@functools.lru_cache(maxsize=32)
def _evaluation_step(model: Model):
  """One compiled evaluation function per model (not one per call)."""

  @jax.jit
  def batch_stats(params, model_state, x, y):
    logits = model.predict(params, model_state, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(loss), jnp.sum(jnp.argmax(logits, -1) != y)

  return batch_stats


def evaluate(model: Model, params, model_state, inputs, labels=None, batch_size: int = 1000):
  """Mean cross-entropy and error of the master's θ on a data set.

  ``inputs, labels``: arrays, or a :class:`HostData` as ``inputs`` and no labels.
  """
  host = isinstance(inputs, HostData)
  num = len(inputs) if host else int(np.shape(inputs)[0])
  loss_sum, wrong = 0.0, 0
  batch_stats = _evaluation_step(model)
  for start in range(0, num, batch_size):
    stop = min(start + batch_size, num)
    x, y = (inputs.load(np.arange(start, stop)) if host
            else (inputs[start:stop], labels[start:stop]))
    loss, err = batch_stats(params, model_state, x, y)
    loss_sum += float(loss)
    wrong += int(err)
  return {"loss": loss_sum / num, "error": wrong / num}


@dataclasses.dataclass
class Result:
  """What :func:`simulate` returns: final state and per-chunk history."""

  state: SimState
  history: list[dict]
  schedules: list
  simulator: Simulator


def simulate(simulator: Simulator, num_steps: int, *, chunk_steps: int | None = None,
             eval_data=None, train_eval_data=None, eval_every_steps: int | None = None,
             callback: Callable[[dict], None] | None = None, progress: bool = True,
             state: SimState | None = None, checkpoint_dir=None,
             checkpoint_every_steps: int | None = None,
             checkpoint_meta: dict | None = None) -> Result:
  """Runs ``num_steps`` master steps in chunks; the host runs once per chunk.

  The next chunk's inputs (schedule, batch indices, or a :class:`HostData`'s
  examples) are prepared on a host thread while the current chunk runs.

  Args:
    simulator: a :class:`Simulator`.
    num_steps: T, master steps to simulate (SSGD: synchronous iterations).
    chunk_steps: steps per compiled chunk (default
      :meth:`Simulator.default_chunk_steps`: one epoch, less for large HostData).
    eval_data: ``(inputs, labels)`` or a :class:`HostData`, evaluated on the
      master's θ at chunk ends (see ``eval_every_steps``).
    train_eval_data: the same for the train error.
    eval_every_steps: evaluate at the first chunk end after every multiple of
      this many steps, and after the last chunk (default: every chunk).
    callback: called with each chunk's record (a dict, one per replica in
      ``record["replicas"]``).
    progress: show a tqdm progress bar.
    state: start from this state instead of ``simulator.init()``.
    checkpoint_dir: save the state and the history here (orbax,
      ``dana_jax.checkpoint``) and, if it already holds a checkpoint of the same
      simulation, resume from it: the restored chunks' records are passed to
      ``callback`` again first, so a log rebuilt from callbacks is complete. A
      checkpoint of a different simulation raises ValueError.
    checkpoint_every_steps: save at the first chunk end after every multiple of
      this many steps (default: every chunk), and after the last chunk.
    checkpoint_meta: more fields (e.g. the experiment config) that a checkpoint
      must match to be resumed.

  Returns:
    A :class:`Result`; ``history[i]["replicas"][r]`` holds chunk i's metrics of replica r.
  """
  _require(isinstance(num_steps, (int, np.integer)) and num_steps >= 1, "num_steps",
           num_steps, "need an integer ≥ 1")
  chunk_steps = chunk_steps or simulator.default_chunk_steps()
  _require(isinstance(chunk_steps, (int, np.integer)) and chunk_steps >= 1, "chunk_steps",
           chunk_steps, "need an integer ≥ 1")
  _require(eval_every_steps is None or (isinstance(eval_every_steps, (int, np.integer))
                                        and eval_every_steps >= 1),
           "eval_every_steps", eval_every_steps, "need None or an integer ≥ 1")
  sync = simulator.synchronous
  schedules = [] if sync else simulator.schedules(num_steps, chunk_steps)
  sync_times = [
      _schedule.synchronous_times(simulator.timing, simulator.num_workers, num_steps, s)
      for s in simulator.timing_seeds] if sync else None
  num_blocks = (simulator.blocks_per_chunk(schedules, num_steps, chunk_steps)
                if simulator.execution == "blocks" and not sync else None)
  _require(checkpoint_every_steps is None or (
      isinstance(checkpoint_every_steps, (int, np.integer)) and checkpoint_every_steps >= 1),
      "checkpoint_every_steps", checkpoint_every_steps, "need None or an integer ≥ 1")
  state = simulator.init() if state is None else state
  history, resumed_at, checkpointer = [], 0, None
  if checkpoint_dir is not None:
    from dana_jax import checkpoint as _checkpoint

    checkpointer = _checkpoint.Checkpointer(checkpoint_dir, _checkpoint.fingerprint(
        simulator, num_steps, chunk_steps, checkpoint_meta))
    restored = checkpointer.restore(state)
    if restored is not None:
      state, history = restored
      resumed_at = history[-1]["step"] if history else 0
      for record in history if callback is not None else ():
        callback(record)
  stopped = bool(history) and all(r["nonfinite"] for r in history[-1]["replicas"])
  starts = [] if stopped else [s for s in range(0, num_steps, chunk_steps) if s >= resumed_at]
  bar = None
  if progress:
    from tqdm.auto import tqdm
    bar = tqdm(total=num_steps, initial=resumed_at, unit="step",
               desc=simulator.algorithm.name, leave=False)
  examples_per_step = simulator.batch_size * (simulator.num_workers if sync else 1)
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as host:
    prepare = lambda start: host.submit(  # noqa: E731
        simulator.chunk_inputs, schedules, start, min(start + chunk_steps, num_steps),
        num_blocks)
    upcoming = prepare(starts[0]) if starts else None
    for i, start in enumerate(starts):
      stop = min(start + chunk_steps, num_steps)
      began = _time.perf_counter()
      state, summary = simulator.run_chunk(state, schedules, start, stop, num_blocks,
                                           upcoming.result())
      if i + 1 < len(starts):
        upcoming = prepare(starts[i + 1])  # on the host thread while the device runs
      summary = _sharding.to_host(summary)
      seconds = _time.perf_counter() - began
      diverged = bool(np.all(summary["nonfinite"]))  # every replica: the run stops here
      evaluating = (eval_every_steps is None or stop == num_steps or diverged
                    or stop // eval_every_steps > start // eval_every_steps)
      record = {"step": stop, "epoch": stop / simulator.steps_per_epoch, "seconds": seconds,
                "examples_per_second": (stop - start) * examples_per_step
                * simulator.num_replicas / seconds, "replicas": []}
      weights = (state.params, state.model_state)
      if evaluating and jax.process_count() > 1:  # sharded over processes: gather, then local
        weights = _sharding.to_host(weights)
      for r in range(simulator.num_replicas):
        rep = {k: (np.asarray(v) if simulator.single else np.asarray(v)[r]).tolist()
               for k, v in summary.items()}
        rep["time/simulated"] = float(sync_times[r][stop - 1] if sync
                                      else schedules[r].time[stop - 1])
        params, model_state = weights if simulator.single else _take(weights, r)
        for data, split in ((eval_data, "test"), (train_eval_data, "train")):
          if data is not None and evaluating:
            ev = evaluate(simulator.model, params, model_state,
                          *((data,) if isinstance(data, HostData) else data))
            rep[f"{split}/loss"], rep[f"{split}/error"] = ev["loss"], ev["error"]
        record["replicas"].append(rep)
      history.append(record)
      if callback is not None:
        callback(record)
      if checkpointer is not None and (
          checkpoint_every_steps is None or stop == num_steps or diverged
          or stop // checkpoint_every_steps > start // checkpoint_every_steps):
        checkpointer.save(stop, state, history)
      if bar is not None:
        bar.update(stop - start)
        bar.set_postfix(loss=f"{record['replicas'][0]['loss/train']:.3f}",
                        ex_s=f"{record['examples_per_second']:.0f}")
      if diverged:
        upcoming.cancel()
        break
  if bar is not None:
    bar.close()
  if checkpointer is not None:
    checkpointer.close()
  return Result(state=state, history=history, schedules=schedules, simulator=simulator)


def replica(state: SimState, index: int) -> SimState:
  """Replica ``index`` of a stacked state."""
  return _take(state, index)


__all__ = ["EXECUTIONS", "ArrayData", "DataOrder", "HostData", "Hyperparams", "Model", "Result",
           "SimState", "Simulator", "default_execution", "evaluate", "replica", "simulate"]
