"""The memory model of DESIGN.md: what the carried state costs, checked before it exists."""

from __future__ import annotations

import os

import jax


def available_memory() -> int | None:
  """The default device's memory limit in bytes; on CPU the host's RAM; None if unknown."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def _nbytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def memory_estimate(sim) -> dict[str, int]:
  """Bytes of the carried state per replica, by part.

  ``worker_stacks``: the N read copies (empty for synchronous runs) and the
  worker program's N per-worker states (e.g. inner AdamW moments);
  ``optimizer``: the optimizer state (for DANA this holds N momenta). Sizes
  come from ``jax.eval_shape``, so nothing is allocated.
  """
  params, _ = jax.eval_shape(sim.model.init, jax.random.key(0))
  hp = {k: v[0] for k, v in sim.hyperparams.items()}
  opt_state = jax.eval_shape(lambda p: sim.optimizer(hp).init(p), params)
  worker = jax.eval_shape(sim.program.init, params)
  n = 0 if sim.synchronous else sim.num_workers
  return {"params": _nbytes(params), "worker_stacks": n * (_nbytes(params) + _nbytes(worker)),
          "optimizer": _nbytes(opt_state), "replicas": sim.num_replicas}


def check_memory(sim, available: int | None = None) -> dict[str, int]:
  """Fails early when the carried state and the device-resident data cannot fit.

  Compares ``R × (params + worker stacks + optimizer state)`` plus the
  training set (when on the device) with ``available`` bytes per device, R
  being the replicas one device holds (all of them, or their share over the
  mesh's ``replicas`` axis; the ``workers`` axis holds full copies) (default: the
  device's memory limit, or the host's RAM on CPU). With
  ``replica_execution="loop"`` the running replica's θ and optimizer state
  are a working copy on top (its stacks are not copied). Activations come on
  top and are not counted, so passing is necessary, not sufficient.

  Returns:
    The estimate, with ``"total"`` and ``"available"`` added.

  Raises:
    MemoryError: with the estimate by part and what to change.
  """
  est = memory_estimate(sim)
  data = 0 if sim.host_data else int(sim.train_inputs.nbytes + sim.train_labels.nbytes)
  per_replica = est["params"] + est["worker_stacks"] + est["optimizer"]
  replicas_here = sim.num_replicas // sim.placement.replica_devices
  working = (est["params"] + est["optimizer"]
             if not sim.single and sim.replica_execution == "loop" else 0)
  total = per_replica * replicas_here + working + data
  available = available_memory() if available is None else int(available)
  gib = lambda b: f"{b / 2 ** 30:.2f} GiB"  # noqa: E731
  running = f" and the running one's working copy {gib(working)}" if working else ""
  if available and total > available:
    raise MemoryError(
        f"The simulation needs at least {gib(total)} but {jax.devices()[0].device_kind} "
        f"has {gib(available)}: per replica, parameters {gib(est['params'])}, "
        f"N = {sim.num_workers} read copies "
        f"{gib(est['worker_stacks'])}, optimizer state {gib(est['optimizer'])} (DANA holds "
        f"N momenta); {replicas_here} replicas per device"
        f"{running}"
        f"; training data on the device "
        f"{gib(data)}. Reduce num_workers, the number of replicas (seeds, grid cells) or the "
        "model, split the replicas over devices (dana_jax.make_mesh), keep the training "
        "data on the host (dana_jax.HostData), or use a device with more memory.")
  return {**est, "total": total, "available": available}
