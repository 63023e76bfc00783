"""Delay compensation (DC-ASGD): a first-order Taylor correction of the gradient.

    g ← g + λ_dc · g ⊙ g ⊙ Δ,     Δ = θ_t − θ̂_k  (docs/spec.md §2.5)

then the NAG-ASGD rule. The adaptive variant first updates
MS ← m·MS + (1 − m) g² and uses λ_dc = λ_0 / √(MS + ε) element-wise.

References:
  Zheng, Meng, Wang, Chen, Yu, Ma, Liu, "Asynchronous Stochastic Gradient
  Descent with Delay Compensation", ICML 2017 (arXiv:1609.08326).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax.transforms._common import require_extra_arg


class DelayCompensationState(NamedTuple):
  """MS, the running mean square of gradients (zeros when not adaptive)."""

  mean_square: optax.Updates


def delay_compensation(
    variance_control: float | None = None,
    *,
    adaptive: bool = False,
    decay: float = 0.95,
    eps: float = 1e-7,
) -> optax.GradientTransformationExtraArgs:
  """Adds λ_dc g ⊙ g ⊙ (θ_t − θ̂_k) to the gradient.

  Args:
    variance_control: λ_dc (constant variant, default 0.04) or λ_0 (adaptive
      variant, default 2.0).
    adaptive: use λ_dc = λ_0 / √(MS + ε).
    decay: m, the decay of MS (0.95).
    eps: ε (1e-7).

  Extra args:
    stale_params: θ̂_k, the parameters the gradient was computed on.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> from dana_jax.transforms import delay_compensation
    >>> tx = delay_compensation(0.5)
    >>> p = {"w": jnp.ones(1)}
    >>> g, _ = tx.update({"w": jnp.full(1, 2.)}, tx.init(p), p, stale_params={"w": jnp.zeros(1)})
    >>> g["w"]  # 2 + 0.5 · 2 · 2 · 1
    Array([4.], dtype=float32)
  """
  if variance_control is None:
    variance_control = 2.0 if adaptive else 0.04

  def init_fn(params):
    return DelayCompensationState(mean_square=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None, *, stale_params=None, **extra_args):
    del extra_args
    stale_params = require_extra_arg("delay_compensation", "stale_params", stale_params,
                                     "the parameters the gradient was computed on")
    params = require_extra_arg("delay_compensation", "params", params,
                               "the current master parameters")
    mean_square = state.mean_square
    if adaptive:
      mean_square = jax.tree.map(lambda ms, g: decay * ms + (1 - decay) * jnp.square(g),
                                 mean_square, updates)
      strength = jax.tree.map(lambda ms: variance_control / jnp.sqrt(ms + eps), mean_square)
    else:
      strength = jax.tree.map(lambda g: variance_control, updates)
    out = jax.tree.map(lambda g, lam, p, s: g + lam * g * g * (p - s), updates, strength,
                       params, stale_params)
    return out, DelayCompensationState(mean_square=mean_square)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
