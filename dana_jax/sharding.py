"""Device meshes for the engine's replica and worker axes (JAX's own SPMD).

A :class:`jax.sharding.Mesh` with the axes ``("replicas", "workers")``:

* ``replicas`` splits independent runs (seeds, grid cells; the engine's
  leading replica axis) over devices. Replicas never communicate, so each
  device simply runs its share.
* ``workers`` splits the gradients a master step batch needs: the K gradients
  of a block (``execution="blocks"``, each on its own weight version) or the
  N gradients of a synchronous step, by ``jax.shard_map``. The master's update
  runs on every device of the axis (it is cheap and sequential), and XLA
  gathers the new gradients.

Nothing here communicates by hand: placement is ``NamedSharding``, and the
collectives are XLA's. With several processes (``jax.distributed``) every
process computes the same host-side inputs and contributes its devices' slices.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dana_jax.errors import ConfigError

AXES = ("replicas", "workers")


def make_mesh(replicas: int = 1, workers: int = 1, devices=None) -> Mesh:
  """A ``replicas × workers`` mesh over ``devices`` (default: the first ``replicas·workers``).

  On a CPU host, several devices come from
  ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before jax is imported.
  """
  for name, value in (("replicas", replicas), ("workers", workers)):
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and value >= 1):
      raise ConfigError(f"mesh.{name}={value!r} is not allowed: need an integer ≥ 1.")
  if devices is not None and not (np.iterable(devices) and not isinstance(devices, str) and all(
      isinstance(d, jax.Device) for d in devices) and len(list(devices)) >= 1):
    raise ConfigError(f"devices={type(devices).__name__} is not allowed: need a sequence of "
                      "jax devices (e.g. jax.devices()) or None.")
  devices = list(jax.devices() if devices is None else devices)
  need = replicas * workers
  if need > len(devices):
    raise ConfigError(
        f"mesh.replicas × mesh.workers = {replicas} × {workers} = {need} devices, but "
        f"{len(devices)} are available ({devices[0].platform}). Use fewer, or on CPU set "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={need} before importing jax.")
  grid = np.asarray(devices[:need], dtype=object).reshape(replicas, workers)
  return Mesh(grid, AXES)


def axis_size(mesh: Mesh | None, name: str) -> int:
  """Devices along ``name`` (1 without a mesh)."""
  return 1 if mesh is None else int(mesh.shape.get(name, 1))


def validate_mesh(mesh) -> None:
  if mesh is None:
    return
  if not isinstance(mesh, Mesh):
    raise ConfigError(f"mesh={mesh!r} is not allowed: need a jax.sharding.Mesh "
                     "(dana_jax.make_mesh) or None.")
  unknown = sorted(set(mesh.axis_names) - set(AXES))
  if unknown:
    raise ConfigError(f"mesh axis names {list(mesh.axis_names)} are not allowed: use "
                     f"{list(AXES)} (dana_jax.make_mesh).")


def sharding(mesh: Mesh, *spec) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(*spec))


def put(tree, target: NamedSharding):
  """Places a pytree of host arrays with one sharding on every leaf.

  In a multi-process run every process passes the same values and contributes
  the slices its devices hold.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, target)

  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, target, lambda index: x[index])

  return jax.tree.map(one, tree)


def to_host(tree):
  """Numpy copies of (possibly multi-process, sharded) arrays, on every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils

  return multihost_utils.process_allgather(tree, tiled=True)


__all__ = ["AXES", "axis_size", "make_mesh", "put", "sharding", "to_host", "validate_mesh"]
