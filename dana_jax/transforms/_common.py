"""Helpers shared by the staleness transforms."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def require_extra_arg(transform: str, name: str, value: Any, meaning: str) -> Any:
  """Returns ``value``; fails with a message naming the missing extra arg."""
  if value is None:
    raise ValueError(
        f"{transform} needs the keyword-only extra argument `{name}` ({meaning}); pass it "
        f"as optimizer.update(grads, state, params, {name}=...).")
  return value


def learning_rate_at(learning_rate, count):
  """η at ``count`` for a float or an optax schedule."""
  return learning_rate(count) if callable(learning_rate) else jnp.asarray(learning_rate)


def find_states(tree: Any, state_type: type) -> list:
  """Every node of type ``state_type`` inside an optimizer state pytree."""
  leaves = jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, state_type))
  return [x for x in leaves if isinstance(x, state_type)]


def tree_size(tree: Any) -> int:
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def index_after(index: jax.Array, *trees: Any) -> jax.Array:
  """``index`` itself, made to depend on every value of ``trees``.

  For writing a row of a stacked [N, ...] array in place inside ``lax.scan``
  only after everything that reads the row's old value (``trees``) has been
  computed. Without a data dependency XLA:CPU may schedule such a reader
  after the write and copies the whole stack every step instead (measured in
  docs/benchmarks.md); an optimization barrier does not order them. The
  comparison below is false for every value, NaN included.
  """
  late = sum(jnp.sum(x) < -jnp.inf for tree in trees for x in jax.tree_util.tree_leaves(tree))
  return index + jnp.asarray(late, index.dtype)
