"""The named algorithms of the GA paper, each a complete optax optimizer.

One registry, :data:`ALGORITHMS`, maps the names ``sgd``, ``asgd``, ``nag``,
``sa``, ``ga``, ``dana``, ``dana_sa``, ``dana_ga``, ``dc_asgd`` and ``ssgd`` to
builders; configs refer to these names only. Every optimizer computes
d = g + λθ (coupled L2 at the master) before any penalty, unless the GA option
``penalize_weight_decay=False`` adds λθ after it.

Example:
  >>> import jax.numpy as jnp
  >>> import dana_jax
  >>> tx = dana_jax.optimizer("dana_ga", learning_rate=0.1, momentum=0.9,
  ...                         weight_decay=1e-4, num_workers=8)
  >>> params = {"w": jnp.ones(3)}
  >>> state = tx.init(params)
  >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params,
  ...                            lag=0, stale_params=params, worker=0)
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import optax

from dana_jax import transforms as T
from dana_jax.transforms._common import find_state


@dataclasses.dataclass(frozen=True)
class Algorithm:
  """A named optimizer family.

  Attributes:
    name: registry name.
    build: ``build(learning_rate, momentum, weight_decay, num_workers, **options)``
      returns the optimizer; ``learning_rate`` is a float or schedule and the
      numbers may be traced (replicas with different hyperparameters).
    synchronous: SSGD: N gradients on the same θ are averaged per master step.
    description: one line for listings.
  """

  name: str
  build: Callable[..., optax.GradientTransformationExtraArgs]
  synchronous: bool = False
  description: str = ""

  def options(self) -> tuple[str, ...]:
    params = inspect.signature(self.build).parameters
    return tuple(n for n, p in params.items() if p.kind == p.KEYWORD_ONLY)

  def check_options(self, options) -> None:
    """Refuses option names this algorithm does not take (the one place that checks)."""
    unknown = sorted(set(options) - set(self.options()))
    if unknown:
      raise ValueError(f"algorithm_options={unknown} is not allowed: {self.name!r} takes "
                       f"{list(self.options()) or 'no options'}.")


def _weight_decay(weight_decay):
  return optax.add_decayed_weights(weight_decay)


def _nesterov(learning_rate, momentum):
  return optax.chain(optax.trace(decay=momentum, nesterov=True),
                     optax.scale_by_learning_rate(learning_rate))


def _heavy_ball(learning_rate, momentum, weight_decay, num_workers):
  del num_workers
  return optax.chain(_weight_decay(weight_decay), optax.trace(decay=momentum),
                     optax.scale_by_learning_rate(learning_rate))


def _nag(learning_rate, momentum, weight_decay, num_workers):
  del num_workers
  return optax.chain(_weight_decay(weight_decay), _nesterov(learning_rate, momentum))


def _sa(learning_rate, momentum, weight_decay, num_workers):
  del num_workers
  return optax.chain(_weight_decay(weight_decay), T.scale_by_staleness(),
                     _nesterov(learning_rate, momentum))


def _gap_aware_penalty(learning_rate, beta, eps, penalty, per_tensor):
  return T.scale_by_gap_aware(learning_rate, beta, eps, penalty=penalty, per_tensor=per_tensor)


def _trace_buffer(momentum_state):
  """NAG's shared buffer, found by type wherever the chain puts its ``optax.TraceState``."""
  return find_state(momentum_state, optax.TraceState, "ga").trace


def _dana_state(momentum_state):
  return find_state(momentum_state, T.DanaState, "dana_ga")


def _ga(learning_rate, momentum, weight_decay, num_workers, *, beta=0.999, eps=1e-8,
        penalty="one_plus", per_tensor=False, penalize_weight_decay=True):
  del num_workers
  ga = _gap_aware_penalty(learning_rate, beta, eps, penalty, per_tensor)
  momentum_tx = _nesterov(learning_rate, momentum)
  if penalize_weight_decay:
    return optax.chain(_weight_decay(weight_decay), T.gap_feedback(
        ga, momentum_tx, previous_buffer=_trace_buffer, momentum=momentum))
  return T.gap_feedback(
      ga, optax.chain(_weight_decay(weight_decay), momentum_tx),
      previous_buffer=_trace_buffer, momentum=momentum)


def _dana(learning_rate, momentum, weight_decay, num_workers):
  return optax.chain(_weight_decay(weight_decay),
                     T.dana(learning_rate, momentum, num_workers=num_workers))


def _dana_sa(learning_rate, momentum, weight_decay, num_workers):
  return optax.chain(_weight_decay(weight_decay), T.scale_by_staleness(),
                     T.dana(learning_rate, momentum, num_workers=num_workers))


def _dana_ga(learning_rate, momentum, weight_decay, num_workers, *, beta=0.999, eps=1e-8,
             penalty="one_plus", per_tensor=False, penalize_weight_decay=True,
             gap_against="lookahead"):
  if gap_against not in ("lookahead", "params"):
    raise ValueError(f"gap_against={gap_against!r} is not allowed: choose 'lookahead' "
                     "(the look-ahead difference of SPEC §2.8) or 'params' (θ_t − θ̂_k).")
  ga = _gap_aware_penalty(learning_rate, beta, eps, penalty, per_tensor)
  dana_tx = T.dana(learning_rate, momentum, num_workers=num_workers)
  momentum_tx = dana_tx if penalize_weight_decay else optax.chain(
      _weight_decay(weight_decay), dana_tx)
  feedback = T.gap_feedback(
      ga, momentum_tx,
      previous_buffer=lambda s: T.dana_previous_buffer(_dana_state(s)),
      gap_reference=(lambda s, p: T.dana_gap_reference(_dana_state(s), p))
      if gap_against == "lookahead" else None,
      momentum=momentum)
  if penalize_weight_decay:
    return optax.chain(_weight_decay(weight_decay), feedback)
  return feedback


def _dc_asgd(learning_rate, momentum, weight_decay, num_workers, *, variance_control=None,
             adaptive=False, decay=0.95, eps=1e-7):
  del num_workers
  return optax.chain(
      T.delay_compensation(variance_control, adaptive=adaptive, decay=decay, eps=eps),
      _weight_decay(weight_decay), _nesterov(learning_rate, momentum))


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in [
        Algorithm("sgd", _heavy_ball, description="heavy-ball SGD (the N = 1 baseline)"),
        Algorithm("asgd", _heavy_ball, description="asynchronous heavy-ball SGD"),
        Algorithm("nag", _nag, description="NAG-ASGD: one shared Nesterov buffer"),
        Algorithm("sa", _sa, description="Staleness-Aware: d / max(τ, 1), then NAG"),
        Algorithm("ga", _ga, description="Gap-Aware: d ⊘ (1 + |Δ|/C), then NAG"),
        Algorithm("dana", _dana, description="DANA-Zero: per-worker momentum, look-ahead reads"),
        Algorithm("dana_sa", _dana_sa, description="Staleness-Aware, then DANA"),
        Algorithm("dana_ga", _dana_ga, description="Gap-Aware on look-ahead gaps, then DANA"),
        Algorithm("dc_asgd", _dc_asgd, description="delay compensation, then NAG"),
        Algorithm("ssgd", _nag, synchronous=True,
                  description="synchronous SGD: N gradients averaged, then NAG"),
    ]
}


def get_algorithm(name: str) -> Algorithm:
  """The registry entry for ``name``; a clear error for unknown names."""
  if name not in ALGORITHMS:
    raise ValueError(f"algorithm={name!r} is not allowed: choose one of {sorted(ALGORITHMS)}.")
  return ALGORITHMS[name]


def optimizer(name: str, *, learning_rate: Any = 0.1, momentum: Any = 0.9,
              weight_decay: Any = 1e-4, num_workers: int = 1,
              **options) -> optax.GradientTransformationExtraArgs:
  """Builds the named optimizer.

  Args:
    name: one of :data:`ALGORITHMS`.
    learning_rate: a float or an optax schedule of the master step.
    momentum: γ (any value in (−1, 1); negative values are allowed).
    weight_decay: λ, coupled L2 added at the master.
    num_workers: N (DANA keeps one momentum vector per worker).
    **options: algorithm options, e.g. ``penalty="max"`` for GA; see
      ``get_algorithm(name).options()``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose update takes ``lag``,
    ``stale_params`` and ``worker`` as extra args.
  """
  algorithm = get_algorithm(name)
  algorithm.check_options(options)
  return algorithm.build(learning_rate, momentum, weight_decay, num_workers, **options)
