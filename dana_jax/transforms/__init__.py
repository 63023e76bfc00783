"""Staleness-mitigation rules as optax transforms (docs/spec.md §2).

One algorithm per module; each factory returns an
``optax.GradientTransformationExtraArgs`` whose update takes the staleness
information as keyword-only extra args: ``lag``, ``stale_params``, ``worker``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from dana_jax.errors import ConfigError
from dana_jax.transforms.dana import (
  DanaState,
  dana,
  dana_gap_reference,
  dana_lookahead,
  dana_previous_buffer,
  dana_where,
)
from dana_jax.transforms.delay_adaptive import ScaleByDelayState, scale_by_delay
from dana_jax.transforms.delay_compensation import DelayCompensationState, delay_compensation
from dana_jax.transforms.delayed_nesterov import (
  DelayedNesterovState,
  TrackUpdateState,
  delayed_nesterov,
  track_update,
)
from dana_jax.transforms.feedback import GapFeedbackState, gap_feedback
from dana_jax.transforms.gap_aware import GapAwareState, scale_by_gap_aware
from dana_jax.transforms.staleness_aware import ScaleByStalenessState, scale_by_staleness
from dana_jax.trees import find_states


def read_params(opt_state: Any, params: optax.Params) -> optax.Params:
  """The parameters a worker reads from the master after an update.

  The DANA look-ahead when the optimizer contains :func:`dana`, else the master
  parameters themselves.
  """
  states = find_states(opt_state, DanaState)
  if len(states) > 1:
    raise ConfigError("read_params: the optimizer state holds more than one DanaState.")
  return dana_lookahead(states[0], params) if states else params


def gap_reference(opt_state: Any, params: optax.Params) -> optax.Params:
  """What the gap Δ of an arriving gradient is measured against (spec §2.8).

  For DANA, the look-ahead a worker would read before this step's update;
  otherwise the master parameters.
  """
  states = find_states(opt_state, DanaState)
  return dana_gap_reference(states[0], params) if states else params


def diagnostics(opt_state: Any) -> dict[str, jnp.ndarray]:
  """The statistics of the last update that the optimizer's states report.

  A transform's state reports them with a ``diagnostics() -> {name: scalar}``
  method (GA's mean(|Δ|/C) and mean(G), SA's divisor, ...), found by what the
  state has, never by its position in a chain; later states in the chain win a
  shared name. The engine's metric table (``dana_jax.engine.metrics``) declares
  the names it records.
  """
  has = lambda x: isinstance(x, tuple) and callable(getattr(x, "diagnostics", None))
  out = {}
  for state in jax.tree_util.tree_leaves(opt_state, is_leaf=has):
    if has(state):
      out.update(state.diagnostics())
  return out


__all__ = [
    "DanaState", "DelayCompensationState", "DelayedNesterovState", "GapAwareState",
    "GapFeedbackState", "ScaleByDelayState", "ScaleByStalenessState", "TrackUpdateState",
    "dana", "dana_gap_reference", "dana_lookahead", "dana_previous_buffer", "dana_where",
    "delay_compensation", "delayed_nesterov", "diagnostics", "gap_feedback", "gap_reference",
    "read_params", "scale_by_delay", "scale_by_gap_aware", "scale_by_staleness", "track_update",
    "where_state",
]


def where_state(condition: jnp.ndarray, new: Any, old: Any, *,
                selected_by_update: bool = False) -> Any:
  """``new`` where ``condition`` else ``old``, for an optimizer state after one update.

  For events that may be no-ops (padding, restarts) inside a vmapped scan: a
  select per leaf, except that a :class:`DanaState`'s per-worker stack is
  selected on the one row the update wrote, so the cost stays O(params), not
  O(N × params). ``selected_by_update``: the update was given
  ``applies=condition`` (:func:`dana`), so its :class:`DanaState` is ``new`` as it is.
  """

  def one(n, o):
    if isinstance(n, DanaState):
      return n if selected_by_update else dana_where(condition, n, o)
    return jnp.where(condition, n, o)

  return jax.tree.map(one, new, old, is_leaf=lambda x: isinstance(x, DanaState))
