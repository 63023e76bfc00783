"""Staleness-Aware (SA) gradient scaling: divide by the lag.

    d ← d / max(τ, 1)

followed by the NAG-ASGD rule (SA) or by DANA (DANA-SA). There is no penalty
at τ = 0, so with one worker SA is its base optimizer.

References:
  Zhang, Gupta, Lian, Liu, "Staleness-aware Async-SGD for Distributed Deep
  Learning", IJCAI 2016 (arXiv:1511.05950).
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), §3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax.transforms._common import float_dtype, require_extra_arg


class ScaleByStalenessState(NamedTuple):
  """Holds the divisor applied at the last step (a diagnostic)."""

  last_divisor: jax.Array

  def diagnostics(self) -> dict:
    """The penalty reported per step: the divisor max(τ, 1)."""
    return {"penalty/mean": self.last_divisor}


def scale_by_staleness() -> optax.GradientTransformationExtraArgs:
  """Divides the updates by ``max(lag, 1)``.

  Extra args:
    lag: int scalar, τ = the number of master updates applied since the
      gradient's parameters were read.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from dana_jax.transforms import scale_by_staleness
    >>> tx = optax.chain(scale_by_staleness(), optax.sgd(0.1))
    >>> params = {"w": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params, lag=4)
    >>> updates["w"]
    Array([-0.025, -0.025], dtype=float32)
  """

  def init_fn(params):
    # float32, or float64 for float64 parameters
    return ScaleByStalenessState(last_divisor=jnp.ones([], float_dtype(params)))

  def update_fn(updates, state, params=None, *, lag=None, **extra_args):
    del params, extra_args
    lag = require_extra_arg("scale_by_staleness", "lag", lag, "the staleness τ of the gradient")
    divisor = jnp.maximum(jnp.asarray(lag, state.last_divisor.dtype), 1.0)
    updates = jax.tree.map(lambda g: (g / divisor).astype(g.dtype), updates)
    return updates, ScaleByStalenessState(last_divisor=divisor)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
