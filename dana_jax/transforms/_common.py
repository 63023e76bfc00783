"""Helpers private to the staleness transforms (the pytree helpers they share with the
engine are public, in :mod:`dana_jax.trees`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dana_jax.errors import ConfigError


def require_extra_arg(transform: str, name: str, value: Any, meaning: str) -> Any:
  """Returns ``value``; fails with a message naming the missing extra arg."""
  if value is None:
    raise ConfigError(
        f"{transform} needs the keyword-only extra argument `{name}` ({meaning}); pass it "
        f"as optimizer.update(grads, state, params, {name}=...).")
  return value


def learning_rate_at(learning_rate, count):
  """η at ``count`` for a float or an optax schedule."""
  return learning_rate(count) if callable(learning_rate) else jnp.asarray(learning_rate)


def float_dtype(tree: Any) -> jnp.dtype:
  """The dtype of the scalars (η, diagnostics) of a transform over the pytree ``tree``.

  The parameters' real floating type, at least float32: float32 parameters give
  float32 (a float32 run is not upcast), float64 ones (``jax_enable_x64``) give
  float64, and bfloat16 ones keep float32 scalars.
  """
  dtypes = [jnp.dtype(getattr(x, "dtype", jnp.result_type(x)))
            for x in jax.tree_util.tree_leaves(tree)]
  dtype = jnp.result_type(*dtypes) if dtypes else jnp.result_type(float)
  if not jnp.issubdtype(dtype, jnp.inexact):
    return jnp.dtype(jnp.result_type(float))
  return jnp.promote_types(jnp.finfo(dtype).dtype, jnp.float32)
