"""The memory model: what the carried state (N read copies per run) and the schedule
cost, checked before either exists.

Two budgets. The *device* holds the carried state (θ, the optimizer state, the N read
copies and worker states, per replica) and the training arrays. The *host* holds the
schedules (:func:`dana_jax.schedule.schedule_nbytes`, one per replica) and the run's
per-chunk record; on CPU the device is the host, so both count against its RAM. A run
that cannot fit is refused with the estimate, as a :class:`MemoryLimitError` — a
:class:`~dana_jax.errors.ConfigError` (so one ``except dj.ConfigError`` catches every
refusal) that is also a ``MemoryError``.
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax import schedule as _schedule
from dana_jax.engine import plan as _plan
from dana_jax.engine.core import float_dtype
from dana_jax.errors import ConfigError

# Host bytes the run's record keeps per chunk: its entry in the chunk list and the
# history record, plus this much per replica (a dict of a dozen metrics).
CHUNK_BYTES, CHUNK_REPLICA_BYTES = 100, 500


class MemoryLimitError(ConfigError, MemoryError):
  """A run whose state or schedule would not fit: ``field=value is not allowed: the
  estimate by part, what is available, and what to change.``"""


def available_memory() -> int | None:
  """The default device's memory limit in bytes; on CPU the host's RAM; None if unknown."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  return host_memory()


def host_memory() -> int | None:
  """The host's physical RAM in bytes; None if unknown."""
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def _nbytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def _gib(b: float) -> str:
  return f"{b / 2 ** 30:.2f} GiB"


@functools.lru_cache(maxsize=16)
def _estimate(spec, model) -> dict[str, int]:
  params, _ = jax.eval_shape(model.init, jax.random.key(0))
  # Default hyperparameters in the default float dtype: the state's shapes and dtypes do
  # not depend on their values.
  lr, momentum, weight_decay = (np.asarray(v, float_dtype()) for v in (0.1, 0.9, 1e-4))
  tx = spec.algorithm.optimizer(lambda count: jnp.asarray(lr), momentum, weight_decay,
                                spec.num_workers, spec.options)
  opt_state = jax.eval_shape(tx.init, params)
  worker = jax.eval_shape(spec.program.init, params)
  n = 0 if spec.synchronous else spec.num_workers
  return {"params": _nbytes(params), "worker_stacks": n * (_nbytes(params) + _nbytes(worker)),
          "optimizer": _nbytes(opt_state), "replicas": spec.num_replicas}


def memory_estimate(spec, model) -> dict[str, int]:
  """Bytes of the carried state per replica of a run (a :class:`~dana_jax.RunSpec`) of
  ``model``, by part.

  ``worker_stacks``: the N read copies (empty for synchronous runs) and the
  worker program's N per-worker states (e.g. inner AdamW moments);
  ``optimizer``: the optimizer state (for DANA this holds N momenta). Sizes
  come from ``jax.eval_shape``, so nothing is allocated. (The optimizer is built
  with a constant learning-rate callable: every schedule and every
  hyperparameter value gives the same state shapes.)
  """
  try:
    return dict(_estimate(spec, model))
  except TypeError:  # a model that cannot be hashed: not cached
    return dict(_estimate.__wrapped__(spec, model))


def check_memory(spec, model, *, data_nbytes: int = 0, available: int | None = None
                 ) -> dict[str, int]:
  """Fails early when the carried state and the device-resident data cannot fit.

  Compares ``R × (params + worker stacks + optimizer state)`` plus the
  training set when on the device (``data_nbytes``) with ``available`` bytes per device, R
  being the replicas one device holds (all of them, or their share over the
  mesh's ``replicas`` axis; the ``workers`` axis holds full copies) (default: the
  device's memory limit, or the host's RAM on CPU). With
  ``replica_execution="loop"`` the running replica's θ and optimizer state
  are a working copy on top (its stacks are not copied). Activations come on
  top and are not counted, so passing is necessary, not sufficient.

  Returns:
    The estimate, with ``"total"`` and ``"available"`` added.

  Raises:
    MemoryLimitError: ``num_workers=N is not allowed: ...`` with the estimate by part
      and what to change.
  """
  est = memory_estimate(spec, model)
  data = int(data_nbytes)
  per_replica = est["params"] + est["worker_stacks"] + est["optimizer"]
  replicas_here = spec.num_replicas // spec.replica_devices
  working = (est["params"] + est["optimizer"]
             if not spec.single and spec.replica_execution == "loop" else 0)
  total = per_replica * replicas_here + working + data
  available = available_memory() if available is None else int(available)
  running = f" and the running one's working copy {_gib(working)}" if working else ""
  if available and total > available:
    raise MemoryLimitError(
        f"num_workers={spec.num_workers} is not allowed: the simulation needs at least "
        f"{_gib(total)} but {jax.devices()[0].device_kind} "
        f"has {_gib(available)}: per replica, parameters {_gib(est['params'])}, "
        f"N = {spec.num_workers} read copies "
        f"{_gib(est['worker_stacks'])}, optimizer state {_gib(est['optimizer'])} (DANA holds "
        f"N momenta); {replicas_here} replicas per device"
        f"{running}"
        f"; training data on the device "
        f"{_gib(data)}. Reduce num_workers, the number of replicas (seeds, grid cells) or the "
        "model, split the replicas over devices (dana_jax.make_mesh), keep the training "
        "data on the host (dana_jax.HostData), or use a device with more memory.")
  return {**est, "total": total, "available": available}


def schedule_estimate(spec, num_steps: int) -> int:
  """A lower bound on the host bytes of the schedules of ``num_steps`` master steps (one
  per timing seed; they are built one after another and all kept)."""
  replicas = len(spec.timing_seeds)
  if spec.synchronous:
    from dana_jax import schedule_rules

    every = not isinstance(spec.round_rule, schedule_rules.RennalaRule)
    one = _schedule.rounds_nbytes(spec.num_workers, num_steps, spec.gradients_per_round, every)
    return one + (replicas - 1) * 16 * int(num_steps)
  restarts = spec.restart_rule is not None or spec.discard_rule is not None
  args = dict(block_size=spec.block_size, draws_per_job=spec.program.batches_per_job,
              restarts=restarts)
  one = _schedule.schedule_nbytes(spec.num_workers, num_steps, **args)
  kept = (_schedule.EVENT_BYTES * int(num_steps)
          + _schedule.BLOCK_BYTES * math.ceil(num_steps / max(1, spec.block_size)))
  return one + (replicas - 1) * kept


def check_size(spec, model=None, *, num_steps: int | None = None,
               chunk_steps: int | None = None, host_data: bool = False, data_nbytes: int = 0,
               example_nbytes: int | None = None, available_host: int | None = None
               ) -> dict[str, int]:
  """Refuses, from the sizes alone and in well under a second, a run that cannot fit.

  Host: the schedules of ``num_steps`` master steps (:func:`schedule_estimate`; None:
  one step, the part that grows with N alone — N numpy streams and their first draws),
  the run's record of its chunks (``chunk_steps``, default one epoch per chunk), and on
  CPU the carried state and training data too, against the host's RAM
  (``available_host``, default :func:`host_memory`). Then the device budget,
  :func:`check_memory` (skipped without a ``model``). Lower bounds: passing is necessary,
  not sufficient. Needs no data: ``data_nbytes`` are the training arrays' bytes on the
  device; with ``host_data`` (a :class:`~dana_jax.HostData`) none, and its chunks hold
  at most ``HOST_CHUNK_BYTES`` of inputs (:func:`~dana_jax.engine.plan.default_chunk_steps`
  with ``example_nbytes``; one epoch per chunk when that is not given).

  Raises:
    MemoryLimitError: naming ``num_steps`` (or ``num_workers`` when no steps are given)
      with the estimate by part and the memory available.
  """
  data_nbytes = 0 if host_data else int(data_nbytes)
  steps = 1 if num_steps is None else int(num_steps)
  schedules = schedule_estimate(spec, steps)
  chunks = 0
  if num_steps is not None:
    per_chunk = (chunk_steps or _plan.default_chunk_steps(
        spec, example_nbytes if host_data else None) or spec.steps_per_epoch)
    chunks = math.ceil(steps / max(per_chunk, 1e-9))
  record = chunks * (CHUNK_BYTES + CHUNK_REPLICA_BYTES * spec.num_replicas)
  state = 0
  on_host = jax.default_backend() == "cpu"
  if on_host and model is not None:
    est = memory_estimate(spec, model)
    state = (spec.num_replicas * (est["params"] + est["worker_stacks"] + est["optimizer"])
             + data_nbytes)
  total = schedules + record + state
  available = host_memory() if available_host is None else int(available_host)
  if available and total > available:
    field, value = (("num_workers", spec.num_workers) if num_steps is None
                    else ("num_steps", steps))
    what = "rounds" if spec.synchronous else "master steps"
    parts = [f"{len(spec.timing_seeds)} schedule(s) of {steps} {what} over N = "
             f"{spec.num_workers} workers {_gib(schedules)}" if num_steps is not None else
             f"the schedule's per-worker part (N = {spec.num_workers} numpy streams and their "
             f"first draws) {_gib(schedules)}"]
    if chunks:
      parts.append(f"the record of {chunks} chunks {_gib(record)}")
    if state:
      parts.append(f"the carried state and training data {_gib(state)}")
    raise MemoryLimitError(
        f"{field}={value} is not allowed: the run needs at least {_gib(total)} of host "
        f"memory but this host has {_gib(available)}: {', '.join(parts)}. "
        + ("Use fewer workers or replicas, or a host with more memory." if num_steps is None
           else "Simulate fewer steps (epochs) or replicas, or longer chunks (chunk_steps)."))
  if model is not None:
    check_memory(spec, model, data_nbytes=data_nbytes)
  return {"schedules": schedules, "record": record, "state": state, "total": total,
          "available": available}
