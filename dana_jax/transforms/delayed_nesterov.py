"""The delayed Nesterov outer rule of asynchronous local SGD, and an update tracker.

Delayed Nesterov (DN; docs/spec.md §6.5): pseudo-gradients g are accumulated and the
momentum is refreshed only every b master steps, so that b workers' stale
contributions enter it together:

    a ← a + g
    if (t + 1) mod b = 0:   m ← γ m + a / b
                            θ ← θ − η ((1 − c·b + c) γ m + g / b)
                            a ← 0
    else:                   θ ← θ − η (c γ m + g / b)

t counts master steps (0 at the first); c ∈ [0, 1] (``activation``) lets a
fraction of the momentum act between refreshes. With b = 1 and c = 0 this is
θ ← θ − η (γ m + g) with m ← γ m + g: Nesterov-style heavy ball.

References:
  Liu, Chen, Wang, Hong, Sun, Salakhutdinov, "Asynchronous Local-SGD
  Training for Language Modeling", 2024 (arXiv:2401.09135), §4, Algorithm 2.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.transforms._common import float_dtype, learning_rate_at


class DelayedNesterovState(NamedTuple):
  count: jax.Array        # t, master steps so far
  accumulator: Any        # a
  momentum: Any           # m


def delayed_nesterov(learning_rate: optax.ScalarOrSchedule, momentum, *, buffer_size: int,
                     activation: float = 0.0) -> optax.GradientTransformationExtraArgs:
  """The DN outer optimizer (equations above); its updates are added to θ.

  Args:
    learning_rate: η, a float or a schedule of the master step.
    momentum: γ.
    buffer_size: b ≥ 1, master steps between momentum refreshes.
    activation: c ∈ [0, 1], the momentum's share between refreshes.
  """
  _require(is_int(buffer_size, 1), "buffer_size", buffer_size, "need an integer ≥ 1")
  _require(isinstance(activation, (int, float)) and 0.0 <= activation <= 1.0, "activation",
           activation, "need a number in [0, 1]")

  def init_fn(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return DelayedNesterovState(jnp.zeros([], jnp.int32), zeros, zeros)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    dtype = float_dtype(updates)
    eta = jnp.asarray(learning_rate_at(learning_rate, state.count), dtype)
    gamma = jnp.asarray(momentum, dtype)
    refresh = (state.count + 1) % buffer_size == 0
    b = float(buffer_size)
    acc = jax.tree.map(lambda a, g: a + g, state.accumulator, updates)
    new_m = jax.tree.map(lambda m, a: jnp.where(refresh, gamma * m + a / b, m),
                         state.momentum, acc)
    weight = jnp.where(refresh, 1.0 - activation * b + activation, activation).astype(dtype)
    out = jax.tree.map(lambda m, g: (-eta * (weight * gamma * m + g / b)).astype(g.dtype),
                       new_m, updates)
    acc = jax.tree.map(lambda a: jnp.where(refresh, jnp.zeros_like(a), a), acc)
    return out, DelayedNesterovState(state.count + 1, acc, new_m)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class TrackUpdateState(NamedTuple):
  inner: Any
  last_update: Any        # u = θ_t − θ_(t−1), the update ``inner`` returned last


def track_update(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """``inner``, remembering the update it returned at the previous step.

  Gap-Aware over an adaptive base (spec §6.6) normalizes the gap by the
  running size of the applied step u = θ_t − θ_(t−1), which only the base
  optimizer knows.
  """
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return TrackUpdateState(inner.init(params), jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None, **extra_args):
    updates, inner_state = inner.update(updates, state.inner, params, **extra_args)
    return updates, TrackUpdateState(inner_state, updates)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
