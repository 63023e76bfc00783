"""Wiring a gap penalty to the momentum transform that follows it.

Gap-Aware needs the momentum buffer applied at the previous master step and,
for DANA-GA, the look-ahead a worker would read now; both live in the state of
the momentum transform *after* it in the chain. :func:`gap_feedback` runs the
two as one transform and passes those views to the penalty as extra args.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class GapFeedbackState(NamedTuple):
  penalty: Any
  momentum: Any


def gap_feedback(
    penalty: optax.GradientTransformationExtraArgs,
    momentum_transform: optax.GradientTransformation,
    *,
    previous_buffer: Callable[[Any], optax.Updates],
    gap_reference: Callable[[Any, optax.Params], optax.Params] | None = None,
    momentum: float | jax.Array | None = 0.9,
) -> optax.GradientTransformationExtraArgs:
  """``penalty`` then ``momentum_transform``, with the penalty seeing the latter's state.

  Args:
    penalty: e.g. :func:`scale_by_gap_aware`.
    momentum_transform: what follows the penalty (momentum and learning rate).
    previous_buffer: maps the momentum state to u, the buffer applied at the
      previous master step.
    gap_reference: maps (momentum state, params) to what Δ is measured
      against; None means the master parameters.
    momentum: γ; when 0 the penalty's u is the incoming direction d. None:
      always ``previous_buffer`` (e.g. the previous applied update, for an
      adaptive base; docs/spec.md §6.6).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.
  """
  momentum_transform = optax.with_extra_args_support(momentum_transform)

  def init_fn(params):
    return GapFeedbackState(penalty.init(params), momentum_transform.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    buffer = previous_buffer(state.momentum)
    if momentum is not None:
      buffer = jax.tree.map(lambda b, d: jnp.where(jnp.asarray(momentum) == 0, d, b),
                            buffer, updates)
    reference = params if gap_reference is None else gap_reference(state.momentum, params)
    extra_args = {**extra_args, "momentum_buffer": buffer, "reference_params": reference}
    updates, penalty_state = penalty.update(updates, state.penalty, params, **extra_args)
    # write_after: a momentum transform that writes a row of a stack in place (DANA) does
    # so after the penalty's new state is computed, which reads that stack's old rows.
    updates, momentum_state = momentum_transform.update(updates, state.momentum, params,
                                                        write_after=penalty_state,
                                                        **extra_args)
    return updates, GapFeedbackState(penalty_state, momentum_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
