"""Rows of the per-worker stacks, and one replica's view of a stacked state.

An event reads its worker's row of each [N, …] stack (θ̂_k, the worker
program's state) and writes it back (:func:`get_rows`, :func:`set_rows`).
With ``replica_execution="loop"`` the replicas run one after another over a
state stacked [R, …]; a replica's view (:func:`replica_view`) slices out what
a step reads whole (θ, the optimizer and model state: O(params)) but leaves
the stacks where they are, as :class:`ReplicaRows`, whose rows the events
read and write in place at (replica, worker). Slicing a replica's stacks out
and back instead costs two copies of N × params per replica and chunk, and one
replica's stacks of memory (docs/benchmarks.md, "Replicas").
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dana_jax.engine.core import SimState, index_replica, put_replica
from dana_jax.transforms._common import set_row


@jax.tree_util.register_pytree_node_class
class ReplicaRows:
  """Replica ``index``'s [N, …] stacks inside ``stacks``, every replica's [R, N, …]."""

  def __init__(self, stacks: Any, index: jax.Array):
    self.stacks, self.index = stacks, index

  def tree_flatten(self):
    return (self.stacks, self.index), None

  @classmethod
  def tree_unflatten(cls, _, children):
    return cls(*children)


def _start(replica, worker, ndim):
  """The start index of row (replica, worker) of an [R, N, …] leaf, every index int32 (a
  dynamic slice needs one integer type; under ``jax_enable_x64`` a loop's counter is
  int64 while the schedule's workers are int32)."""
  index = lambda i: jnp.asarray(i, jnp.int32)
  return (index(replica), index(worker)) + (index(0),) * (ndim - 2)


def get_rows(stacks, worker):
  """Row ``worker`` (a scalar, or a vector of rows) of every leaf of ``stacks``."""
  if not isinstance(stacks, ReplicaRows):
    return jax.tree.map(lambda x: x[worker], stacks)
  r = stacks.index
  if jnp.ndim(worker) == 0:
    def one(x):
      start = _start(r, worker, x.ndim)
      return jax.lax.dynamic_slice(x, start, (1, 1) + x.shape[2:])[0, 0]
    return jax.tree.map(one, stacks.stacks)
  return jax.tree.map(lambda x: x[r, worker], stacks.stacks)


def set_rows(stacks, worker, values):
  """Row ``worker`` (a scalar in range) of every leaf of ``stacks`` set to ``values``, in
  place (a dynamic-update-slice; ``transforms._common.set_row``)."""
  if not isinstance(stacks, ReplicaRows):
    return set_row(stacks, worker, values)
  r = stacks.index

  def one(x, v):
    start = _start(r, worker, x.ndim)
    return jax.lax.dynamic_update_slice(x, v[None, None].astype(x.dtype), start)

  return ReplicaRows(jax.tree.map(one, stacks.stacks, values), r)


def _stacks(tree, r):
  return None if tree is None else ReplicaRows(tree, r)


def replica_view(state: SimState, r) -> SimState:
  """Replica ``r`` of a state stacked [R, …]: its O(params) parts sliced out, its stacks
  left in place (:class:`ReplicaRows`)."""
  step, params, opt_state, model_state, read_step = index_replica(
      (state.step, state.params, state.opt_state, state.model_state, state.read_step), r)
  return SimState(step, params, opt_state, model_state, _stacks(state.read_params, r),
                  read_step, _stacks(state.worker_state, r))


def merge_view(state: SimState, view: SimState, r) -> SimState:
  """``state`` with replica ``r`` replaced by ``view`` (its stacks already are)."""
  small = lambda s: (s.step, s.params, s.opt_state, s.model_state, s.read_step)
  step, params, opt_state, model_state, read_step = put_replica(small(state), small(view), r)
  unwrap = lambda rows: None if rows is None else rows.stacks
  return SimState(step, params, opt_state, model_state, unwrap(view.read_params), read_step,
                  unwrap(view.worker_state))
