"""Where a sweep runs: ``jax.distributed`` started if configured, the device mesh, and
which process writes.

Every process of a multi-process run (a TPU slice, a cluster) runs the same sweep;
only process 0 writes, and what it decides about the disk is broadcast
(:func:`agreed`). ``jax.distributed.initialize``'s arguments are checked first
where jax would hang or abort (:func:`distributed_arguments`).
"""

from __future__ import annotations

import time

import jax
import numpy as np

import dana_jax as dj
from experiments import validate


def writer() -> bool:
  """Whether this process writes results (process 0 of a multi-process run)."""
  return jax.process_index() == 0


def agreed(value: bool) -> bool:
  """Process 0's ``value`` on every process (each may see a different disk)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils

  return bool(multihost_utils.broadcast_one_to_all(np.asarray(value)))


def setup_devices(config):
  """Starts ``jax.distributed`` if configured; returns the sweep's mesh (None: one device)."""
  dist = config.get("distributed")
  if dist is not None and dist.initialize and not jax.distributed.is_initialized():
    kwargs = distributed_arguments(dist)
    # CPU processes talk through gloo; GPU and TPU ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
      jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError) as e:  # jax's refusals: what is missing, or too late
      raise validate.ConfigError(
          f"config.distributed.initialize=True failed: {str(e).splitlines()[0]} (set "
          "config.distributed.coordinator_address, num_processes and process_id, or run "
          "without config.distributed.initialize)") from None
  mesh = config.get("mesh")
  host = config.get("host_devices", 0)
  if host and jax.default_backend() == "cpu" and jax.local_device_count() != host:
    raise validate.ConfigError(
        f"config.host_devices={host} is not in effect: jax already started with "
        f"{jax.local_device_count()} CPU devices. Set XLA_FLAGS="
        f"--xla_force_host_platform_device_count={host} before jax is imported (python -m "
        "experiments.<name> does this itself).")
  if mesh is None:
    return None
  with validate.library_errors("mesh"):
    mesh = dj.make_mesh(replicas=mesh.replicas, workers=mesh.workers)
  return None if mesh.size == 1 else mesh


# How long a process other than 0 waits for the coordinator (process 0) to listen; jax
# itself would wait 300 s and then abort the process.
COORDINATOR_WAIT_S = 60.0


def distributed_arguments(dist) -> dict:
  """``jax.distributed.initialize``'s arguments from ``config.distributed``, checked first
  where jax would hang or abort the process: without a coordinator address there must be a
  cluster jax detects (SLURM, Open MPI, a TPU slice, …); with one, its host must resolve,
  its port be a port, and a process other than 0 must reach it within
  ``COORDINATOR_WAIT_S``. Every refusal is one ConfigError line."""
  import socket
  kwargs = {}
  if dist.num_processes:
    kwargs["num_processes"] = dist.num_processes
  if dist.process_id >= 0:
    kwargs["process_id"] = dist.process_id
  field = f"config.distributed.coordinator_address={dist.coordinator_address!r}"
  if not dist.coordinator_address:
    if not _cluster_detected():
      raise validate.ConfigError(
          "config.distributed.initialize=True is not allowed here: no cluster was detected "
          "(SLURM, Open MPI, a TPU slice or Kubernetes); give "
          "config.distributed.coordinator_address=HOST:PORT, num_processes and process_id, "
          "or leave initialize=False for one process")
    _require_jax_not_started()
    return kwargs
  host, _, port = dist.coordinator_address.rpartition(":")
  if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
    raise validate.ConfigError(f"{field} is not allowed: need HOST:PORT with a port in "
                               "1 … 65535")
  if not dist.num_processes or dist.process_id < 0:
    raise validate.ConfigError(
        f"config.distributed.num_processes={dist.num_processes} and process_id="
        f"{dist.process_id} are not allowed with a coordinator address: give both "
        "(0 ≤ process_id < num_processes)")
  try:
    socket.getaddrinfo(host.strip("[]"), int(port))
  except (OSError, UnicodeError) as e:
    raise validate.ConfigError(f"{field} is not allowed: its host does not resolve "
                               f"({e})") from None
  _require_jax_not_started()
  if dist.process_id != 0:
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
      try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
        break
      except OSError as e:
        if time.monotonic() > deadline:
          raise validate.ConfigError(
              f"{field} is not allowed: process 0 does not answer there after "
              f"{COORDINATOR_WAIT_S:.0f} s ({e.strerror or e}); start process 0 first, with "
              "the same address") from None
        time.sleep(1.0)
  kwargs["coordinator_address"] = dist.coordinator_address
  return kwargs


def _require_jax_not_started() -> None:
  """jax.distributed.initialize must come before jax starts its backends."""
  from jax._src import xla_bridge
  if xla_bridge.backends_are_initialized():
    raise validate.ConfigError(
        "config.distributed.initialize=True is not allowed here: jax has already started in "
        "this process; run the experiment's command (python -m experiments.<name>) instead")


def _cluster_detected() -> bool:
  """Whether jax would find a cluster to auto-detect (True where it cannot tell), as
  ``jax.distributed.initialize`` without arguments looks for one."""
  import os
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return True
  try:
    from jax._src import clusters
    kinds = clusters.ClusterEnv._cluster_types
  except (ImportError, AttributeError):
    return True
  for kind in kinds:
    try:
      if not getattr(kind, "opt_in_only_method", False) and kind.is_env_present():
        return True
    except Exception:  # a detector that cannot run here detects nothing
      continue
  return False
