"""The exact asynchronous-SGD simulator: one compiled program per chunk of steps.

docs/spec.md §1 and §6.0 event semantics. An apply event
(master step t) applies the job of the arriving worker k_t — computed on
what k read (its row of the read-copy stack) with the batches of its
dispatch — folds that job's BatchNorm statistics into the master's, and lets
k read again (θ, or DANA's look-ahead); a restart event only lets k read
again; a synchronous round applies the mean of G gradients computed at θ_r.

A job depends only on what its worker read and on its batches, so *when* it
is computed is free (only the order in which gradients are
computed changes). The engine computes it when its worker arrives, from the
stored read copy: then no pending gradient or statistics need be stored.

Two executions of the asynchronous events, with the same semantics:

* ``execution="steps"``: ``lax.scan`` over events; each computes the arriving
  worker's job, then applies it.
* ``execution="blocks"``: ``lax.scan`` over blocks of consecutive events whose
  workers are distinct. Every job applied in a block was read before it, so
  the block's jobs are computed first, together, with one ``vmap`` over the
  worker axis, and then applied in order (an inner scan).

The state of one run is a :class:`SimState`; R independent runs (seeds,
hyperparameters) are a leading replica axis on every leaf, run in one compiled
call by one ``vmap`` or by a loop over the replica axis (``replica_execution``;
the loop on CPU).

The pieces, each with one job:

=================  ==========================================================
``core``           the model interface, the carried state, hyperparameters
``run_spec``       :class:`RunSpec`: one run's configuration, checked once
``host_data``      the global data stream (spec §1), training sets on the host
``compatibility``  a data set against its model, before anything is compiled
``metrics``        the per-step metrics, declared once, and the chunk summary
``step``           traced functions: a job, a master event, the loops
``plan``           the host side of a chunk: events, rows, batches, examples
``placement``      jit, the replica axis (vmap or loop), mesh shardings
``memory``         the memory model, checked before anything is allocated
``simulator``      :class:`Simulator`: the model, the data, compiled chunks
``loop``           :func:`simulate`: chunks, prefetch, and the hooks at chunk
                   ends (evaluation, callback, checkpoints, progress)
=================  ==========================================================

The worker programs (one gradient, or H local optimizer steps) are
``dana_jax.workers``, outside the engine: the algorithms build them too.

The engine does not know which algorithm runs: it hands ``lag``,
``stale_params`` and ``worker`` to the optimizer it is given, and finds what
it needs of the optimizer's state by type (``dana_jax.transforms``).
"""

import warnings as _warnings

from dana_jax.checkpoint import STATE_FORMAT
from dana_jax.engine import memory, metrics, plan
from dana_jax.engine.core import (
    EXECUTIONS,
    REPLICA_EXECUTIONS,
    Hyperparams,
    Model,
    SimState,
    check_hyperparams,
    default_execution,
    default_replica_execution,
)
from dana_jax.engine.host_data import HOST_CHUNK_BYTES, ArrayData, DataOrder, HostData
from dana_jax.engine.loop import ChunkEnd, Result, evaluate, evaluate_replicas, replica, simulate
from dana_jax.engine.memory import check_size
from dana_jax.engine.metrics import METRICS, Metric, metric_names
from dana_jax.engine.plan import check_timing
from dana_jax.engine.run_spec import RunSpec, batches_per_step
from dana_jax.engine.simulator import Simulator
from dana_jax.workers import Gradient, LocalSteps

__all__ = ["EXECUTIONS", "HOST_CHUNK_BYTES", "METRICS", "REPLICA_EXECUTIONS", "STATE_FORMAT",
           "ArrayData", "ChunkEnd", "DataOrder", "Gradient", "HostData", "Hyperparams",
           "LocalSteps", "Metric", "Model", "Result", "RunSpec", "SimState", "Simulator",
           "batches_per_step", "check_hyperparams", "check_size", "check_timing",
           "default_execution",
           "default_replica_execution", "evaluate", "evaluate_replicas", "memory", "metrics",
           "plan", "replica", "simulate", "metric_names"]

# Modules renamed or moved, kept for one release as deprecated names of this package.
_MOVED = {"workers": "dana_jax.workers", "data": "dana_jax.engine.host_data",
          "checks": "dana_jax.engine.compatibility"}


def __getattr__(name):
  """Deprecated: ``dana_jax.engine.workers`` (now ``dana_jax.workers``),
  ``dana_jax.engine.data`` (``host_data``), ``dana_jax.engine.checks``
  (``compatibility``)."""
  if name not in _MOVED:
    raise AttributeError(f"module 'dana_jax.engine' has no attribute {name!r}")
  import importlib

  _warnings.warn(f"dana_jax.engine.{name} is deprecated: use {_MOVED[name]}",
                 DeprecationWarning, stacklevel=2)
  return importlib.import_module(_MOVED[name])
