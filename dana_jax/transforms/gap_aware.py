"""Gap-Aware (GA) gradient penalty: shrink each coordinate by how far it moved.

Element-wise, at every master step (docs/spec.md §2.4):

    r ← β r + (1 − β) u²          u: the momentum buffer applied at the
                                     previous master step (d when γ = 0)
    r̂ = r / (1 − βⁿ)              n: number of r updates so far
    η_max = max of η over all steps so far
    C = η_max (√r̂ + ε)            the average step size
    G = 1 + |Δ| / C                Δ = reference − stale parameters
    d ← d ⊘ G

G ≥ 1, so gradients are only ever shrunk. Because C uses η_max, the penalty
falls after a learning-rate decay (while SA keeps penalising τ).

The transform needs two things only its neighbours know: the previous step's
momentum buffer ``u`` and, for DANA-GA, the look-ahead the worker would read
now. :func:`dana_jax.transforms.gap_feedback` wires them in from the momentum
transform that follows; the named optimizers ``ga`` and ``dana_ga`` do that
for you. Used on its own, pass them as extra args.

References:
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), §4, Algorithm 1.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax.errors import ConfigError
from dana_jax.transforms._common import float_dtype, learning_rate_at, require_extra_arg
from dana_jax.trees import tree_size

PENALTIES = ("one_plus", "max")


class GapAwareState(NamedTuple):
  """State of :func:`scale_by_gap_aware`.

  Attributes:
    count: number of updates (n), int32.
    second_moment: r, the running mean of u².
    max_learning_rate: η_max so far.
    mean_gap: mean(|Δ| / C) at the last step (diagnostic).
    mean_penalty: mean(G) at the last step (diagnostic).
  """

  count: jax.Array
  second_moment: optax.Updates
  max_learning_rate: jax.Array
  mean_gap: jax.Array
  mean_penalty: jax.Array

  def diagnostics(self) -> dict:
    """mean(|Δ| / C) and mean(G) of the last step."""
    return {"gap/normalized": self.mean_gap, "penalty/mean": self.mean_penalty}


def scale_by_gap_aware(
    learning_rate: optax.ScalarOrSchedule,
    beta: float = 0.999,
    eps: float = 1e-8,
    *,
    penalty: str = "one_plus",
    per_tensor: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """Divides the updates by the Gap-Aware penalty G.

  Args:
    learning_rate: the learning rate or optax schedule of the optimizer this
      penalty feeds; the transform tracks its running maximum η_max.
    beta: decay of the running mean of the squared momentum buffer (0.999).
    eps: added to √r̂ (1e-8).
    penalty: ``"one_plus"`` for G = 1 + |Δ|/C (the GA paper) or ``"max"`` for
      G = max(1, |Δ|/C).
    per_tensor: one G per parameter tensor, from mean(|Δ|) / mean(C) over the
      tensor, instead of one per element.

  Extra args:
    stale_params: the parameters the gradient was computed on (θ̂_k).
    reference_params: what Δ is measured against; defaults to ``params``
      (θ_t). DANA-GA passes the look-ahead the worker would read now.
    momentum_buffer: u, the momentum buffer applied at the previous master
      step; when omitted the incoming direction d is used (the γ = 0 case).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from dana_jax.transforms import scale_by_gap_aware
    >>> tx = scale_by_gap_aware(learning_rate=0.1)
    >>> params = {"w": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> d = {"w": jnp.ones(2)}
    >>> out, state = tx.update(d, state, params, stale_params={"w": jnp.array([0., .1])})
    >>> jnp.round(out["w"], 4)  # C = 0.1 · (√1 + ε) ≈ 0.1, so G ≈ (1, 2)
    Array([1. , 0.5], dtype=float32)
  """
  if penalty not in PENALTIES:
    raise ConfigError(f"penalty={penalty!r} is not allowed: choose one of {PENALTIES}.")

  def init_fn(params):
    dtype = float_dtype(params)  # float32, or float64 for float64 parameters
    return GapAwareState(
        count=jnp.zeros([], jnp.int32),
        second_moment=jax.tree.map(jnp.zeros_like, params),
        max_learning_rate=jnp.zeros([], dtype),
        mean_gap=jnp.zeros([], dtype),
        mean_penalty=jnp.ones([], dtype),
    )

  def update_fn(updates, state, params=None, *, stale_params=None, reference_params=None,
                momentum_buffer=None, **extra_args):
    del extra_args
    stale_params = require_extra_arg("scale_by_gap_aware", "stale_params", stale_params,
                                     "the parameters the gradient was computed on")
    reference = params if reference_params is None else reference_params
    reference = require_extra_arg("scale_by_gap_aware", "params", reference,
                                  "the current master parameters")
    buffer = updates if momentum_buffer is None else momentum_buffer
    second_moment = jax.tree.map(lambda r, u: beta * r + (1 - beta) * jnp.square(u),
                                 state.second_moment, buffer)
    count = state.count + 1
    dtype = state.max_learning_rate.dtype
    correction = 1 - jnp.asarray(beta, dtype) ** count.astype(dtype)
    lr = jnp.asarray(learning_rate_at(learning_rate, state.count), dtype)
    max_lr = jnp.maximum(state.max_learning_rate, lr)

    def one_leaf(d, r, ref, stale):
      step = max_lr * (jnp.sqrt(r / correction) + eps)
      gap = jnp.abs(ref - stale)
      if per_tensor:
        ratio = jnp.broadcast_to(jnp.mean(gap) / jnp.mean(step), d.shape)
      else:
        ratio = gap / step
      g = 1.0 + ratio if penalty == "one_plus" else jnp.maximum(1.0, ratio)
      return (d / g).astype(d.dtype), ratio, g

    triples = jax.tree.map(one_leaf, updates, second_moment, reference, stale_params)
    is_triple = lambda x: isinstance(x, tuple) and len(x) == 3
    new_updates = jax.tree.map(lambda x: x[0], triples, is_leaf=is_triple)
    ratios = jax.tree.map(lambda x: x[1], triples, is_leaf=is_triple)
    penalties = jax.tree.map(lambda x: x[2], triples, is_leaf=is_triple)
    size = tree_size(updates)
    total = lambda t: sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(t))
    mean_gap = total(ratios) / size
    # mean(1 + |Δ|/C) = 1 + mean(|Δ|/C): one reduction fewer (an element-wise
    # pass over the parameters per step); equal up to float rounding.
    mean_penalty = 1.0 + mean_gap if penalty == "one_plus" else total(penalties) / size
    new_state = GapAwareState(count=count, second_moment=second_moment,
                              max_learning_rate=max_lr, mean_gap=mean_gap.astype(dtype),
                              mean_penalty=mean_penalty.astype(dtype))
    return new_updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
