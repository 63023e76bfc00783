"""What every piece of the engine shares: the model interface, the carried state,
the hyperparameters, and the choice of execution."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax._checks import require

EXECUTIONS = ("auto", "steps", "blocks")
REPLICA_EXECUTIONS = ("auto", "vmap", "loop")


def default_execution(backend: str | None = None) -> str:
  """The execution ``"auto"`` resolves to on a backend.

  XLA:CPU: ``"steps"``: a vmap over weight versions turns convolutions into
  grouped convolutions, which XLA:CPU runs slowly (docs/benchmarks.md, "Executions
  on CPU"). GPU/TPU: ``"blocks"``, because a larger effective batch K·B is what
  fills an accelerator (the design's choice; ``benchmarks/gpu.sh`` measures it).
  """
  backend = backend or jax.default_backend()
  return "steps" if backend == "cpu" else "blocks"


def default_replica_execution(backend: str | None = None) -> str:
  """How ``"auto"`` runs R replicas in one compiled call on a backend.

  ``"vmap"`` batches them: every operation runs once for all R. ``"loop"`` runs
  them one after another inside the same call (a ``fori_loop`` over the replica
  axis that updates the stacked state in place); each replica then computes
  bitwise what its run alone computes.

  XLA:CPU: ``"loop"``. On a few cores batching adds no parallelism, while vmap
  multiplies every event's working set by R (out of the cache at a
  Fashion-sized MLP) and turns the convolutions of R weight versions into
  grouped convolutions (docs/benchmarks.md, "The loop over replicas").
  GPU/TPU: ``"vmap"``, which is what fills an accelerator
  (``benchmarks/gpu.sh`` measures both).
  """
  backend = backend or jax.default_backend()
  return "loop" if backend == "cpu" else "vmap"


class Model(NamedTuple):
  """What the engine needs of a model (pure functions; see ``dana_jax.models``).

  Attributes:
    init: ``key -> (params, model_state)``.
    loss: ``(params, inputs, labels, key) -> (loss, contribution)``, the training
      forward pass; ``key`` is unique per (seed, dispatch); ``contribution`` is
      what this batch adds to the running statistics (``{}`` for models without
      state).
    fold: ``(model_state, contribution) -> model_state``, applied at arrival.
    predict: ``(params, model_state, inputs) -> outputs`` in evaluation mode.
    metrics: ``(outputs, labels) -> {name: per-example values [B]}``, averaged
      over an evaluation set (``test/<name>``); None: classification with
      integer labels, ``{"loss": softmax cross-entropy, "error": argmax ≠ label}``.
  """

  init: Callable
  loss: Callable
  fold: Callable
  predict: Callable
  metrics: Callable | None = None


class SimState(NamedTuple):
  """Everything a run carries from one event to the next.

  Per-worker stacks have a leading [N] axis; synchronous runs have none. A
  worker's gradient is computed when it arrives, from its row of
  ``read_params``, so no pending gradient is stored.
  """

  step: jax.Array                 # t, master steps applied, int32
  params: Any                     # master θ
  opt_state: Any
  model_state: Any                # BatchNorm running statistics of the master
  read_params: Any                # θ̂_k for every worker, [N, ...]
  read_step: jax.Array            # r_k, [N]
  worker_state: Any = None        # the worker program's per-worker state, [N, ...]


# A change of SimState's layout changes dana_jax.checkpoint.STATE_FORMAT.


@dataclasses.dataclass(frozen=True)
class Hyperparams:
  """Numbers that may differ between replicas (each a scalar or an [R] array)."""

  learning_rate: Any = 0.1
  momentum: Any = 0.9
  weight_decay: Any = 1e-4


def float_dtype():
  """The default float dtype: float32, or float64 under ``jax_enable_x64``."""
  return jnp.result_type(float)


def tree_rms(tree) -> jax.Array:
  """Root mean square over every element of a pytree (in its own float dtype)."""
  leaves = jax.tree_util.tree_leaves(tree)
  total = sum(jnp.sum(jnp.square(x)) for x in leaves)
  return jnp.sqrt(total / sum(x.size for x in leaves))


def all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def take(tree, index):
  """Row ``index`` of every leaf."""
  return jax.tree.map(lambda x: x[index], tree)


def index_replica(tree, r):
  """Replica ``r`` (traced) of every leaf of a tree stacked on a leading replica axis."""
  return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, r, keepdims=False), tree)


def put_replica(tree, new, r):
  """``tree`` with replica ``r`` of every leaf set to ``new``'s (a dynamic-update-slice)."""
  return jax.tree.map(lambda a, b: jax.lax.dynamic_update_index_in_dim(a, b, r, 0), tree, new)


def check_hyperparams(hp: Hyperparams, num_replicas: int) -> dict[str, np.ndarray]:
  """Each field as one value per replica (default float dtype); refuses bad values."""
  out = {}
  for name in ("learning_rate", "momentum", "weight_decay"):
    value = np.asarray(getattr(hp, name), dtype=float_dtype())
    require(value.ndim == 0 or (value.ndim == 1 and len(value) == num_replicas),
            f"hyperparams.{name}", getattr(hp, name),
            f"need a scalar or one value per replica ({num_replicas})")
    require(bool(np.all(np.isfinite(value))), f"hyperparams.{name}", getattr(hp, name),
            "must be finite")
    out[name] = np.broadcast_to(value, (num_replicas,)).copy()
  require(bool(np.all(out["learning_rate"] > 0)), "hyperparams.learning_rate",
          hp.learning_rate, "must be > 0")
  require(bool(np.all(np.abs(out["momentum"]) < 1)), "hyperparams.momentum", hp.momentum,
          "must lie in (−1, 1)")
  require(bool(np.all(out["weight_decay"] >= 0)), "hyperparams.weight_decay",
          hp.weight_decay, "must be ≥ 0")
  return out
