"""Delay-adaptive step sizes: shrink a gradient whose delay exceeds the number of workers.

    d ← d · min(1, N / max(τ, 1))

followed by the base rule (NAG-ASGD for ``delay_adaptive``; with γ = 0 this
is the delay-adaptive asynchronous SGD of Mishchenko et al., whose step size
is η_t = η · min(1, N / τ_t)). Unlike Staleness-Aware (d / max(τ, 1)), a
gradient is untouched while its delay is at most N — the typical delay of N
homogeneous workers — so only the rare very stale gradients are damped.

References:
  Mishchenko, Bach, Even, Woodworth, "Asynchronous SGD Beats Minibatch SGD
  Under Arbitrary Delays", NeurIPS 2022 (arXiv:2206.07638), §3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.transforms._common import float_dtype, require_extra_arg


class ScaleByDelayState(NamedTuple):
  """Holds the factor min(1, N / max(τ, 1)) applied at the last step (a diagnostic)."""

  last_factor: jax.Array

  def diagnostics(self) -> dict:
    """The penalty reported per step: 1 / factor (the factor is ≤ 1)."""
    return {"penalty/mean": 1.0 / self.last_factor}


def scale_by_delay(num_workers: int) -> optax.GradientTransformationExtraArgs:
  """Multiplies the updates by ``min(1, num_workers / max(lag, 1))``.

  Args:
    num_workers: N ≥ 1, the delay up to which gradients are not scaled.

  Extra args:
    lag: int scalar, τ = the number of master updates applied since the
      gradient's parameters were read.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> from dana_jax.transforms import scale_by_delay
    >>> tx = scale_by_delay(num_workers=4)
    >>> params = {"w": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params, lag=8)
    >>> updates["w"]
    Array([0.5, 0.5], dtype=float32)
  """
  _require(is_int(num_workers, 1), "num_workers", num_workers, "need an integer ≥ 1")

  def init_fn(params):
    return ScaleByDelayState(last_factor=jnp.ones([], float_dtype(params)))

  def update_fn(updates, state, params=None, *, lag=None, **extra_args):
    del params, extra_args
    lag = require_extra_arg("scale_by_delay", "lag", lag, "the staleness τ of the gradient")
    dtype = state.last_factor.dtype
    factor = jnp.minimum(1.0, num_workers / jnp.maximum(jnp.asarray(lag, dtype), 1.0))
    updates = jax.tree.map(lambda g: (g * factor).astype(g.dtype), updates)
    return updates, ScaleByDelayState(last_factor=factor.astype(dtype))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
