"""The traced pieces of a chunk: a worker's job, a master event, the three loops
(events one at a time, blocks of events, synchronous rounds) and the chunk
summary. Pure functions of their arguments: no host state.

``parts`` (a :class:`Parts`, built by :func:`make_parts`) bundles what they need of
the simulation, each a value or a pure function: the model, the worker program, the
optimizer built from a replica's hyperparameters, its learning rate, how a batch is
gathered, how a stack of jobs is spread over the mesh's ``workers`` devices, and the
per-step metrics (``engine.metrics``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax import transforms as T
from dana_jax.engine import metrics as _metrics
from dana_jax.engine.core import float_dtype, take, tree_rms
from dana_jax.engine.rows import get_rows, set_rows
from dana_jax.learning_rates import InEpochs
from dana_jax.schedule import APPLY, NOOP, REJOIN
from dana_jax.trees import index_after, values_after
from dana_jax.workers import MaskedStats

# Named streams of a replica's data key, each folded with the batch number.
AUGMENT_STREAM, MODEL_STREAM = 0, 1


class Parts(NamedTuple):
  model: Any                   # engine Model
  program: Any                 # worker program (dana_jax.workers)
  optimizer: Callable          # hp -> optax transformation
  learning_rate: Callable      # hp -> (step -> η)
  batch: Callable              # (examples, batch number, data key, data) -> (inputs, labels)
  over_workers: Callable       # (fn, split: tuple[bool]) -> fn over the workers devices
  metrics: tuple = ()          # the per-step metrics (engine.metrics.Metric)


def learning_rates(schedule, steps_per_epoch):
  """``base -> (count -> η)`` of a Simulator's ``learning_rate_schedule``: constant for
  None, an :class:`~dana_jax.learning_rates.InEpochs` at this run's steps per epoch."""
  if schedule is None:
    return lambda base: (lambda count: jnp.asarray(base, float_dtype()))
  if isinstance(schedule, InEpochs):  # in epochs: ours per epoch
    return lambda base: schedule.at(base, steps_per_epoch)
  return schedule


def _batch(host_data, augment, examples, batch, data_key, data):
  """A batch's (inputs, labels) on the device, augmented with a key of its batch number."""
  inputs, labels = examples if host_data else (data[0][examples], data[1][examples])
  if augment is not None:
    key = jax.random.fold_in(jax.random.fold_in(data_key, AUGMENT_STREAM), batch)
    inputs = augment(inputs, key)
  return inputs, labels


def make_parts(spec, model, learning_rate_schedule, augment, host_data: bool, over_workers,
               metrics=None) -> Parts:
  """The :class:`Parts` of a run (a :class:`~dana_jax.RunSpec`) and its model: the
  optimizer and learning rate are closures over the spec's algorithm, options and N;
  ``host_data``: batches arrive as examples (HostData), not indices into ``data``;
  ``metrics`` default to :data:`dana_jax.engine.metrics.METRICS`."""
  algorithm, options, num_workers = spec.algorithm, spec.options, spec.num_workers
  rate = learning_rates(learning_rate_schedule, spec.steps_per_epoch)

  def optimizer(hp):
    """The optimizer of one replica, built from (possibly traced) hyperparameters."""
    return algorithm.optimizer(rate(hp["learning_rate"]), hp["momentum"], hp["weight_decay"],
                               num_workers, options)

  def learning_rate(hp):
    return rate(hp["learning_rate"])

  return Parts(model, spec.program, optimizer, learning_rate,
               functools.partial(_batch, host_data, augment), over_workers,
               tuple(_metrics.METRICS if metrics is None else metrics))


def job(parts: Parts, params, worker_state, examples, batches, data_key, data, read_step,
        hp=None):
  """A worker's job on what it read: ``examples``/``batches`` hold its H batches.

  A batch number b < 0 marks a step the job does not run (DyLU: a job shorter
  than H; its examples are those of batch −b − 1, loaded only to keep shapes
  static); the program gets the mask as ``valid``.
  """
  valid = batches >= 0
  batches = jnp.where(valid, batches, -batches - 1)
  inputs, labels = jax.vmap(parts.batch, in_axes=(0, 0, None, None))(
      examples, batches, data_key, data)
  model_key = jax.random.fold_in(data_key, MODEL_STREAM)
  keys = jax.vmap(lambda b: jax.random.fold_in(model_key, b))(batches)
  return parts.program.run(parts.model, params, worker_state, inputs, labels, keys, read_step,
                           hp, valid=valid)


def fold_all(model, model_state, contributions):
  """Folds a job's [H, …] statistics contributions in order (only the valid ones of a
  :class:`~dana_jax.workers.MaskedStats`)."""
  if isinstance(contributions, MaskedStats):
    if not jax.tree_util.tree_leaves(contributions.values):
      return model_state

    def masked(s, c):
      values, run = c
      return _where(run, model.fold(s, values), s), None
    return jax.lax.scan(masked, model_state, tuple(contributions))[0]
  count = jax.tree_util.tree_leaves(contributions)
  if not count or count[0].shape[0] == 1:
    return model.fold(model_state, take(contributions, 0))
  return jax.lax.scan(lambda s, c: (model.fold(s, c), None), model_state, contributions)[0]


def _where(condition, new, old):
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class Own(NamedTuple):
  """What an event reads of its worker's rows, before it: θ̂_k, r_k and the program's state."""
  row: Any
  read_step: jax.Array
  worker_row: Any


def _own(state, worker) -> Own:
  rows = None if state.worker_state is None else get_rows(state.worker_state, worker)
  return Own(get_rows(state.read_params, worker), state.read_step[worker], rows)


def master_event(parts: Parts, tx, hp, state, worker, own: Own, arrival, kind=None):
  """One event for ``worker`` (docs/spec.md §1 steps 1–3, §6.0); returns ``(state, metrics)``.

  ``own``: the worker's rows read before this event (:func:`_own`);
  ``arrival = (gradient, contributions, loss, worker_row)``: what its job
  computed on them. ``kind`` None: an apply event. Otherwise a traced event
  kind: an apply event; a restart (nothing applied, the worker reads again);
  or a no-op (padding). Masked events select per leaf on what an event
  touches (θ, the optimizer state's O(params) leaves, one row of each
  stack), never on the [N, …] stacks: a ``lax.cond`` would, once vmapped over
  replicas, become a select over the whole state (docs/benchmarks.md).

  θ and the rows are updated in place; on XLA:CPU that happens without a copy
  only if every reader of the old value is computed first, so the writes are
  made to depend on the readers whose results they do not already need
  (``values_after``, ``index_after``; docs/benchmarks.md).
  """
  grads, contributions, loss, worker_row = arrival
  t = state.step
  lag = t - own.read_step
  reference = T.gap_reference(state.opt_state, state.params)
  gap_rms = tree_rms(jax.tree.map(lambda a, b: a - b, reference, own.row))
  # The optimizer updates its state in place (e.g. DANA's Σv, read by the gap): after the gap.
  # An event that may not apply (kind given): DANA's update keeps its state itself if not.
  applies = None if kind is None else dict(applies=kind == APPLY)
  updates, opt_state = tx.update(values_after(grads, gap_rms), state.opt_state, state.params,
                                 lag=lag, stale_params=own.row, worker=worker,
                                 **(applies or {}))
  diagnostics = T.diagnostics(opt_state)
  params = optax.apply_updates(state.params, values_after(updates, gap_rms, loss, diagnostics))
  model_state = fold_all(parts.model, state.model_state, contributions)
  step = t + 1
  if kind is not None:
    applied = kind == APPLY
    params = _where(applied, params, state.params)
    opt_state = T.where_state(applied, opt_state, state.opt_state, selected_by_update=True)
    model_state = _where(applied, model_state, state.model_state)
    step = t + applied.astype(t.dtype)
  read = T.read_params(opt_state, params)
  read_step = step
  if kind is not None:  # a no-op keeps the row; a restart reads again
    rereads = kind != NOOP
    read = _where(rereads, read, own.row)
    read_step = jnp.where(rereads, step, own.read_step)
    if worker_row is not None:  # only a finished (applied) job changes the worker's state
      worker_row = _where(applied, worker_row, own.worker_row)
      if getattr(parts.program, "reset_on_rejoin", False):  # docs/spec.md §8.2
        worker_row = _where(kind == REJOIN, parts.program.init(read), worker_row)
  metrics = _metrics.compute(parts.metrics, _metrics.Event(
      t, lag, gap_rms, loss, parts.learning_rate(hp)(t), diagnostics, params, opt_state,
      worker))
  # = worker; the row writes wait for every gradient leaf (one element each), so also
  # for the backward pass's own reads of the old rows (a conv kernel, a BatchNorm scale).
  slot = index_after(worker, gap_rms, loss, diagnostics,
                     [jnp.ravel(g)[:1] for g in jax.tree_util.tree_leaves(grads)])
  worker_state = (state.worker_state if worker_row is None
                  else set_rows(state.worker_state, slot, worker_row))
  state = state._replace(step=step, params=params, opt_state=opt_state,
                         model_state=model_state,
                         read_params=set_rows(state.read_params, slot, read),
                         read_step=state.read_step.at[worker].set(read_step),
                         worker_state=worker_state)
  return state, metrics


def _job(parts, own: Own, examples, batches, data_key, data, hp):
  return job(parts, own.row, own.worker_row, examples, batches, data_key, data, own.read_step,
             hp)


def run_steps(parts: Parts, state, xs, data_key, hp, data, masked: bool):
  """Events one at a time: ``xs = (worker, kind, examples, batches)`` per event."""
  tx = parts.optimizer(hp)

  def body(state, x):
    worker, kind, examples, batches = x
    own = _own(state, worker)
    compute = lambda: _job(parts, own, examples, batches, data_key, data, hp)
    if not masked:
      return master_event(parts, tx, hp, state, worker, own, compute())
    # A restart or no-op needs no gradient (skipped on one replica, selected on many).
    shapes = jax.eval_shape(compute)
    arrival = jax.lax.cond(kind == APPLY, compute,
                           lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
    return master_event(parts, tx, hp, state, worker, own, arrival, kind)

  return jax.lax.scan(body, state, xs)


def _jobs(parts: Parts, own: Own, examples, batches, data_key, data, hp):
  """The jobs of a block, each on its own read copy; split over the ``workers`` devices."""

  def local(own, examples, batches, data_key, data, hp):
    if jax.tree_util.tree_leaves(own.row)[0].shape[0] == 1:  # no vmap for one job
      out = _job(parts, take(own, 0), take(examples, 0), batches[0], data_key, data, hp)
      return jax.tree.map(lambda x: x[None], out)
    return jax.vmap(_job, in_axes=(None, 0, 0, 0, None, None, None))(
        parts, own, examples, batches, data_key, data, hp)

  fn = parts.over_workers(local, (True, True, True, False, False, False))
  return fn(own, examples, batches, data_key, data, hp)


def run_blocks(parts: Parts, state, xs, data_key, hp, data):
  """Blocks of events of distinct workers: their jobs first, together, then the events.

  The block's events index its jobs' results by position inside the loop
  rather than scanning over them: with a replica axis, ``lax.scan`` over
  [K, …] inputs (or outputs) moves the replica axis behind the scanned one,
  a transposed copy of every job's gradient and read copy per block
  (docs/benchmarks.md, "Replicas").
  """
  tx = parts.optimizer(hp)

  def block(state, x):
    workers, kinds, examples, batches = x
    # The block's workers are distinct and read before it (padding: worker 0,
    # its job unused), so their jobs are computed first, together.
    out = _jobs(parts, _own(state, workers), examples, batches, data_key, data, hp)

    def event(state, k):
      worker = workers[k]
      # The worker's rows as they are now: its own job's, unless it is padding.
      return master_event(parts, tx, hp, state, worker, _own(state, worker), take(out, k),
                          kinds[k])

    return jax.lax.scan(event, state, jnp.arange(kinds.shape[0]))

  state, metrics = jax.lax.scan(block, state, xs)
  return state, jax.tree.map(lambda m: m.reshape((-1,) + m.shape[2:]), metrics)


def run_rounds(parts: Parts, state, xs, data_key, hp, data):
  """Synchronous rounds: the mean of G gradients at θ_r (spec §6.0, §2.9)."""
  tx = parts.optimizer(hp)

  def gradients(params, examples, batches, data_key, data):
    return jax.vmap(job, in_axes=(None, None, None, 0, 0, None, None, None))(
        parts, params, None, examples, batches, data_key, data, 0)

  over = parts.over_workers(gradients, (False, True, True, False, False))

  def body(state, x):
    examples, batches = x[:2]
    grads, contributions, loss, _ = over(state.params, examples, batches, data_key, data)
    if len(x) == 3:  # a round shrunk by failures: the mean of its first x[2] gradients
      weight = (jnp.arange(batches.shape[0]) < x[2]).astype(loss.dtype)
      count = x[2].astype(loss.dtype)
      grad = jax.tree.map(lambda g: jnp.tensordot(weight.astype(g.dtype), g, axes=1)
                          / count.astype(g.dtype), grads)
      loss = jnp.where(weight > 0, loss, jnp.sum(weight * loss) / count)
      keep = jnp.repeat(weight > 0, batches.size // batches.shape[0])
    else:
      grad = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
      keep = None
    updates, opt_state = tx.update(grad, state.opt_state, state.params, lag=0,
                                   stale_params=state.params, worker=0)
    flat = jax.tree.map(lambda c: c.reshape((-1,) + c.shape[2:]), contributions)
    if keep is None:
      model_state = jax.lax.scan(lambda s, c: (parts.model.fold(s, c), None),
                                 state.model_state, flat, length=batches.size)[0]
    else:  # only the counted gradients' statistics are folded in
      model_state = jax.lax.scan(
          lambda s, ck: (_where(ck[1], parts.model.fold(s, ck[0]), s), None),
          state.model_state, (flat, keep), length=batches.size)[0]
    params = optax.apply_updates(state.params, updates)
    metrics = _metrics.compute(parts.metrics, _metrics.Event(
        state.step, jnp.zeros([], jnp.int32), jnp.zeros([], loss.dtype), jnp.mean(loss),
        parts.learning_rate(hp)(state.step), T.diagnostics(opt_state), params, opt_state, 0))
    return state._replace(step=state.step + 1, params=params, opt_state=opt_state,
                          model_state=model_state), metrics

  return jax.lax.scan(body, state, xs)
