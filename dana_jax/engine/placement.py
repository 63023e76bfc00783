"""Placement: jit, the replica axis (a vmap or a loop), and the mesh's shardings
(``dana_jax.sharding``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax import sharding as _sharding
from dana_jax.engine.core import index_replica, put_replica


class Placement:
  """How one simulation's functions are compiled and its inputs placed.

  Args:
    mesh: a ``("replicas", "workers")`` mesh or None (one device).
    single: no replica axis (a single int seed).
    replica_execution: ``"vmap"`` or ``"loop"`` (:func:`over_replicas`).
  """

  def __init__(self, mesh, single: bool, replica_execution: str = "vmap"):
    self.mesh, self.single, self.replica_execution = mesh, single, replica_execution
    self.replica_devices = _sharding.axis_size(mesh, "replicas")
    self.worker_devices = _sharding.axis_size(mesh, "workers")

  def replica_sharding(self):
    """Per-replica arrays: leading axis split over ``replicas`` (replicated if single)."""
    split = not self.single and "replicas" in self.mesh.axis_names
    return _sharding.sharding(self.mesh, "replicas") if split else _sharding.sharding(self.mesh)

  def compile(self, fn, num_args: int, views=None, **jit_kwargs):
    """jit of ``fn(*per_replica_args, data)`` over the replicas, placed on the mesh
    (``views``: see :func:`over_replicas`)."""
    if not self.single:
      spmd = "replicas" if self.mesh is not None and "replicas" in self.mesh.axis_names else None
      fn = over_replicas(fn, num_args, self.replica_execution, spmd, views)
    if self.mesh is None:
      return jax.jit(fn, **jit_kwargs)
    per, whole = self.replica_sharding(), _sharding.sharding(self.mesh)
    return jax.jit(fn, in_shardings=(per,) * num_args + (whole,), out_shardings=per,
                   **jit_kwargs)

  def place(self, per_replica_args):
    """Host inputs of a compiled function, on the mesh when there is one."""
    if self.mesh is None:
      return per_replica_args
    return _sharding.put(per_replica_args, self.replica_sharding())

  def put_data(self, inputs, labels):
    """The training arrays on the device (a copy on every device of the mesh)."""
    if self.mesh is None:
      return jax.numpy.asarray(inputs), jax.numpy.asarray(labels)
    return _sharding.put((np.asarray(inputs), np.asarray(labels)),
                         _sharding.sharding(self.mesh))

  def stack(self, per_replica: list):
    """Per-replica host values stacked on a leading replica axis (none if single)."""
    if self.single:
      return per_replica[0]
    return jax.tree.map(lambda *xs: np.stack(xs), *per_replica)

  def over_workers(self, fn, split: tuple[bool, ...]):
    """``fn`` with the arguments marked in ``split`` split over the ``workers`` devices
    (``shard_map``; outputs split too); ``fn`` itself without such an axis."""
    if self.worker_devices == 1:
      return fn
    spec = jax.sharding.PartitionSpec
    return jax.shard_map(fn, mesh=self.mesh, out_specs=spec("workers"), check_vma=False,
                         in_specs=tuple(spec("workers") if s else spec() for s in split))


def over_replicas(fn, num_args: int, replica_execution: str, spmd_axis_name=None, views=None):
  """``fn(*per_replica_args, *shared)`` for every replica of a leading replica axis.

  ``"vmap"``: one batched computation. ``"loop"``: a ``fori_loop`` over the
  replicas, each computing ``fn`` on its own slice of the per-replica
  arguments, its outputs written into [R, …] results. ``views = (select,
  merge)`` makes ``fn``'s first output replace its first argument in place
  instead (a chunk: state in, state out): ``select(arg, r)`` is what replica
  ``r`` computes on (e.g. ``rows.replica_view``, which leaves the [N, …] stacks
  in place), ``merge(arg, out, r)`` writes its result back; a donated stacked
  state is then updated in place. Either way the outputs carry the replica axis.
  """
  if replica_execution == "vmap":
    return lambda *args: jax.vmap(fn, in_axes=(0,) * num_args + (None,) * (len(args) - num_args),
                                  spmd_axis_name=spmd_axis_name)(*args)
  def looped(*args):
    per, shared = tuple(args[:num_args]), args[num_args:]
    count = jax.tree.leaves(per)[0].shape[0]
    select = ((lambda p, r: (views[0](p[0], r),) + index_replica(p[1:], r)) if views
              else index_replica)
    shapes = jax.eval_shape(lambda *a: fn(*a, *shared), *select(per, 0))
    rest = shapes[1:] if views else shapes
    out = jax.tree.map(lambda a: jnp.zeros((count,) + a.shape, a.dtype), rest)

    def body(r, carry):
      per, out = carry
      r = jnp.asarray(r, jnp.int32)  # one index type with the schedule's, under x64 too
      new = fn(*select(per, r), *shared)
      if views:
        return (views[1](per[0], new[0], r),) + per[1:], put_replica(out, new[1:], r)
      return per, put_replica(out, new, r)

    per, out = jax.lax.fori_loop(0, count, body, (per, out))
    return (per[0],) + tuple(out) if views else out

  return looped
