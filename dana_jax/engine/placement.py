"""Placement: jit, the replica vmap, and the mesh's shardings (``dana_jax.sharding``)."""

from __future__ import annotations

import jax
import numpy as np

from dana_jax import sharding as _sharding


class Placement:
  """How one simulation's functions are compiled and its inputs placed.

  Args:
    mesh: a ``("replicas", "workers")`` mesh or None (one device).
    single: no replica axis (a single int seed).
  """

  def __init__(self, mesh, single: bool):
    self.mesh, self.single = mesh, single
    self.replica_devices = _sharding.axis_size(mesh, "replicas")
    self.worker_devices = _sharding.axis_size(mesh, "workers")

  def replica_sharding(self):
    """Per-replica arrays: leading axis split over ``replicas`` (replicated if single)."""
    split = not self.single and "replicas" in self.mesh.axis_names
    return _sharding.sharding(self.mesh, "replicas") if split else _sharding.sharding(self.mesh)

  def compile(self, fn, num_args: int, **jit_kwargs):
    """jit of ``fn(*per_replica_args, data)``, vmapped over replicas, placed on the mesh."""
    if not self.single:
      spmd = "replicas" if self.mesh is not None and "replicas" in self.mesh.axis_names else None
      fn = jax.vmap(fn, in_axes=(0,) * num_args + (None,), spmd_axis_name=spmd)
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
