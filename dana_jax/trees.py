"""Pytree helpers shared by the transforms, the algorithms and the engine.

Two kinds:

* **Finding a state by type**: :func:`find_states`, :func:`find_state` — a wrapper
  or a diagnostic finds a piece of a chained optimizer state by what it is
  (``optax.TraceState``, ``DanaState``), never by its position in the chain.
* **Stacked per-worker trees** ([N, ...] leaves, one row per worker) updated in
  place inside ``lax.scan``: :func:`set_row` writes a row, :func:`index_after` and
  :func:`values_after` order a write after the reads of the old value, so XLA
  updates the carried arrays in place instead of copying them (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dana_jax.errors import ConfigError


def find_states(tree: Any, state_type: type) -> list:
  """Every node of type ``state_type`` inside an optimizer state pytree."""
  leaves = jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, state_type))
  return [x for x in leaves if isinstance(x, state_type)]


def find_state(tree: Any, state_type: type, owner: str = "") -> Any:
  """The one node of type ``state_type`` inside an optimizer state pytree.

  How a wrapper finds a piece of a chained state by what it is, never by its
  position in the chain (reordering a chain must not change which buffer is read).
  """
  states = find_states(tree, state_type)
  if len(states) != 1:
    raise ConfigError(f"{owner or 'find_state'}: the optimizer state holds {len(states)} "
                     f"{state_type.__name__} nodes; exactly one is needed.")
  return states[0]


def tree_size(tree: Any) -> int:
  """The number of scalars in the leaves of ``tree``."""
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def index_after(index: jax.Array, *trees: Any) -> jax.Array:
  """``index`` itself, made to depend on every value of ``trees``.

  For writing a row of a stacked [N, ...] array in place inside ``lax.scan``
  only after everything that reads the row's old value (``trees``) has been
  computed. Without a data dependency XLA:CPU may schedule such a reader
  after the write and copies the whole stack every step instead
  (docs/benchmarks.md); an optimization barrier does not order them. The
  comparison below is false for every value, NaN included.
  """
  return index + jnp.asarray(_never(trees), index.dtype)


def _never(trees: Any) -> jax.Array:
  """A boolean that is false for every value of ``trees`` (NaN included) but depends on all."""
  return sum(jnp.sum(x) < -jnp.inf for tree in trees for x in jax.tree_util.tree_leaves(tree))


def set_row(tree: Any, index: jax.Array, values: Any) -> Any:
  """Row ``index`` (in range) of every [N, ...] leaf of ``tree`` set to ``values``.

  A dynamic-update-slice, updated in place inside ``lax.scan``, rather than
  ``.at[index].set`` (a scatter), whose bounds check selects between the new
  and the old row and so reads the old row too (docs/benchmarks.md).
  """
  return jax.tree.map(lambda x, v: jax.lax.dynamic_update_index_in_dim(x, v, index, 0),
                      tree, values)


def values_after(tree: Any, *scalars: Any) -> Any:
  """``tree`` itself (bitwise), made to depend on the scalar values ``scalars``.

  For updating a carried array in place inside ``lax.scan`` only after the
  readers of its old value that the new value does not depend on (e.g. the
  gap metric reads θ_t, and θ_(t+1) = θ_t + update does not need it).
  Without the dependency XLA:CPU copies the carried array every step
  (docs/benchmarks.md). Multiplying by 1 is exact for every value; pass
  scalars (cheap), not whole trees.
  """
  one = jnp.where(_never(scalars), 0.0, 1.0)
  return jax.tree.map(lambda x: x * one.astype(x.dtype), tree)
