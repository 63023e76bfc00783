"""The named algorithms, each a complete optax optimizer and, where it has one, an
event plan.

One registry, :data:`ALGORITHMS`, maps the names of the GA paper (``sgd``,
``asgd``, ``nag``, ``sa``, ``ga``, ``dana``, ``dana_sa``, ``dana_ga``,
``dc_asgd``, ``ssgd``) and of the methods after it (spec §6:
``delay_adaptive``, ``ringmaster``, ``msync``, ``rennala``,
``async_local_sgd``) to builders; configs refer to these names only. Every
optimizer computes d = g + λθ (coupled L2 at the master) before any penalty,
unless the GA option ``penalize_weight_decay=False`` adds λθ after it, or the
base optimizer decouples it (``adamw``, ``muon``).

A rule that changes *which* gradients are applied when (cancellation,
rounds, local steps) is an :class:`EventPlan` made by the algorithm's
``plan`` builder from its options (the event and round rules of
:mod:`dana_jax.schedule`).

A new staleness rule is a transform (one file in :mod:`dana_jax.transforms`) and one
:class:`Algorithm` entry here: its name, builder, options' checks, display order (the
registry's order) and colour all live in the entry.

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
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import optax

from dana_jax import transforms as T
from dana_jax.errors import ConfigError
from dana_jax.schedule import DiscardAtDelay, FastestRule, RennalaRule, RestartAtDelay
from dana_jax.specs import Bool, Choice, Int, Real, Spec, declared, takes
from dana_jax.transforms.gap_aware import PENALTIES
from dana_jax.trees import find_state
from dana_jax.workers import INNER_OPTIMIZERS, InnerOptimizer, LocalSteps

BASES = ("sgd", "adam", "adamw", "muon")
OUTER_RULES = ("nesterov", "delayed_nesterov", "adam", "adamw", "muon")

# The checks of the options several algorithms share (docs/spec.md §2.4, §2.8, §6.6).
BASE = Choice(BASES, "the base optimizer after the rule, docs/spec.md §6.6")
BETA = Real(0, 1, high_open=True,
            meaning="β, the decay of the running mean r of squared steps, docs/spec.md §2.4")
GA_EPS = Real(0, low_open=True, meaning="ε of C = η_max (√r̂ + ε), docs/spec.md §2.4")
PENALTY = Choice(PENALTIES, "G = 1 + |Δ|/C or max(1, |Δ|/C), docs/spec.md §2.4")
PER_TENSOR = Bool("one penalty per parameter tensor instead of per element")
PENALIZE_WEIGHT_DECAY = Bool("whether the penalty divides λθ too")


class EventPlan(NamedTuple):
  """What an algorithm changes in the event model (spec §6.0); None: the default.

  Attributes:
    restart_rule: a :data:`dana_jax.schedule.RestartRule` (e.g. Ringmaster's).
    discard_rule: ``lag -> bool``: an arriving gradient it marks is discarded.
    round_rule: the rounds of a synchronous algorithm (e.g. m-sync, Rennala).
    worker_program: what a worker computes per job (e.g. H local steps).
  """

  restart_rule: Any = None
  discard_rule: Any = None
  round_rule: Any = None
  worker_program: Any = None


@dataclasses.dataclass(frozen=True, init=False)
class Algorithm:
  """A named optimizer family.

  Attributes:
    name: registry name.
    build: ``build(learning_rate, momentum, weight_decay, num_workers, **options)``
      returns the optimizer; ``learning_rate`` is a float or schedule and the
      numbers may be traced (replicas with different hyperparameters).
    synchronous: rounds of G gradients on the same θ are averaged per master step.
    description: one line for listings.
    plan: ``plan(num_workers, **options) -> EventPlan``, the algorithm's changes to
      the event model, or None (``schedule=``, its former name, is a deprecated alias).
      ``build`` and ``plan`` each receive the options they name, and each
      declares its options' checks beside its definition with
      :func:`dana_jax.specs.takes` (e.g. ``@takes(beta=Real(0, 1, high_open=True))``);
      :meth:`check_options` runs them and refuses an option without one.
    colour: the colour figures draw this algorithm in (a matplotlib colour, e.g.
      ``"#2166ac"``); None: a colour of matplotlib's cycle by position.
  """

  name: str
  build: Callable[..., optax.GradientTransformationExtraArgs]
  synchronous: bool = False
  description: str = ""
  plan: Callable[..., EventPlan] | None = None
  colour: str | None = None

  def __init__(self, name: str, build: Callable[..., optax.GradientTransformationExtraArgs],
               synchronous: bool = False, description: str = "",
               plan: Callable[..., EventPlan] | None = None, colour: str | None = None, *,
               schedule: Callable[..., EventPlan] | None = None):
    if schedule is not None:
      warnings.warn("Algorithm(schedule=...) is deprecated: use Algorithm(plan=...) "
                    "('schedule' names the event schedule).", DeprecationWarning, stacklevel=2)
      if plan is not None:
        raise ConfigError("schedule=... is not allowed with plan=...: give plan only "
                          "(schedule is its deprecated name).")
      plan = schedule
    for field, value in (("name", name), ("build", build), ("synchronous", synchronous),
                         ("description", description), ("plan", plan), ("colour", colour)):
      object.__setattr__(self, field, value)

  @property
  def schedule(self) -> Callable[..., EventPlan] | None:
    """Deprecated alias of :attr:`plan`."""
    warnings.warn("Algorithm.schedule is deprecated: use Algorithm.plan (the builder) or "
                  "Algorithm.event_plan(num_workers, options) (its EventPlan).",
                  DeprecationWarning, stacklevel=2)
    return self.plan

  def options(self) -> tuple[str, ...]:
    names = _keyword_options(self.build)
    if self.plan is not None:
      names += tuple(n for n in _keyword_options(self.plan) if n not in names)
    return names

  def optimizer(self, learning_rate, momentum, weight_decay, num_workers, options):
    """The optimizer, given every option (each part takes the ones it names)."""
    mine = _keyword_options(self.build)
    return self.build(learning_rate, momentum, weight_decay, num_workers,
                      **{k: v for k, v in options.items() if k in mine})

  def event_plan(self, num_workers: int, options) -> EventPlan:
    """The algorithm's :class:`EventPlan` (all defaults if it has no ``plan``)."""
    if self.plan is None:
      return EventPlan()
    mine = _keyword_options(self.plan)
    return self.plan(num_workers, **{k: v for k, v in options.items() if k in mine})

  def option_specs(self) -> dict[str, Spec]:
    """Each option's declared check (:mod:`dana_jax.specs`), from ``build`` and
    ``plan`` (each declares its own with :func:`~dana_jax.specs.takes`)."""
    specs = declared(self.build)
    if self.plan is not None:
      specs.update({k: v for k, v in declared(self.plan).items() if k not in specs})
    return specs

  def check_options(self, options) -> None:
    """Refuses option names this algorithm does not take, then every value its option's
    declared check refuses: ``algorithm_options.<name>=<value> is not allowed: ...``
    (the one place that checks, before anything is built)."""
    if not isinstance(options, Mapping):
      raise ConfigError(f"algorithm_options={options!r} is not allowed: need a dict of "
                        f"option names to values (or None); {self.name!r} takes "
                        f"{list(self.options()) or 'no options'}.")
    unknown = sorted(set(options) - set(self.options()))
    if unknown:
      raise ConfigError(f"algorithm_options={unknown} is not allowed: {self.name!r} takes "
                       f"{list(self.options()) or 'no options'}.")
    specs = self.option_specs()
    for name, value in options.items():
      spec = specs.get(name)
      if spec is None:  # a factory without a declared check for it: refuse, never guess
        raise ConfigError(f"algorithm_options.{name}={value!r} is not allowed: {self.name!r} "
                          "declares no check for this option (dana_jax.specs.takes).")
      spec.check(f"algorithm_options.{name}", value)


def _keyword_options(fn) -> tuple[str, ...]:
  params = inspect.signature(fn).parameters
  return tuple(n for n, p in params.items() if p.kind == p.KEYWORD_ONLY)


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


def _base(base, learning_rate, momentum, weight_decay):
  """(coupled L2 λθ first?, the base optimizer) of option ``base`` (spec §6.6).

  ``sgd``: NAG (2.2). ``adam``: optax's Adam with b1 = γ, after coupled L2.
  ``adamw``: optax's AdamW, b1 = γ, decoupled weight decay λ. ``muon``:
  optax.contrib's Muon (momentum γ, decoupled weight decay λ on its
  matrices; Adam with b1 = γ on the other parameters).
  """
  if base not in BASES:
    raise ConfigError(f"algorithm_options.base={base!r} is not allowed: choose one of "
                     f"{list(BASES)}.")
  if base == "sgd":
    return True, _nesterov(learning_rate, momentum)
  if base == "adam":
    return True, optax.adam(learning_rate, b1=momentum)
  if base == "adamw":
    return False, optax.adamw(learning_rate, b1=momentum, weight_decay=weight_decay)
  return False, optax.contrib.muon(learning_rate, beta=momentum, weight_decay=weight_decay,
                                   adam_b1=momentum, adam_weight_decay=weight_decay)


def _penalty_then_base(penalty, learning_rate, momentum, weight_decay, base):
  """λθ (if the base couples it), ``penalty``, then the base optimizer."""
  coupled, base_tx = _base(base, learning_rate, momentum, weight_decay)
  parts = [_weight_decay(weight_decay)] if coupled else []
  return optax.chain(*parts, penalty, base_tx)


@takes(base=BASE)
def _sa(learning_rate, momentum, weight_decay, num_workers, *, base="sgd"):
  del num_workers
  return _penalty_then_base(T.scale_by_staleness(), learning_rate, momentum, weight_decay, base)


@takes(base=BASE)
def _delay_adaptive(learning_rate, momentum, weight_decay, num_workers, *, base="sgd"):
  return _penalty_then_base(T.scale_by_delay(num_workers), learning_rate, momentum,
                            weight_decay, base)


def _gap_aware_penalty(learning_rate, beta, eps, penalty, per_tensor):
  return T.scale_by_gap_aware(learning_rate, beta, eps, penalty=penalty, per_tensor=per_tensor)


def _trace_buffer(momentum_state):
  """NAG's shared buffer, found by type wherever the chain puts its ``optax.TraceState``."""
  return find_state(momentum_state, optax.TraceState, "ga").trace


def _dana_state(momentum_state):
  return find_state(momentum_state, T.DanaState, "dana_ga")


def _last_update(state):
  return find_state(state, T.TrackUpdateState, "ga").last_update


@takes(beta=BETA, eps=GA_EPS, penalty=PENALTY, per_tensor=PER_TENSOR,
       penalize_weight_decay=PENALIZE_WEIGHT_DECAY, base=BASE)
def _ga(learning_rate, momentum, weight_decay, num_workers, *, beta=0.999, eps=1e-8,
        penalty="one_plus", per_tensor=False, penalize_weight_decay=True, base="sgd"):
  del num_workers
  coupled, base_tx = _base(base, learning_rate, momentum, weight_decay)
  if base == "sgd":  # spec §2.4: C from the Nesterov buffer and η_max
    ga = _gap_aware_penalty(learning_rate, beta, eps, penalty, per_tensor)
    buffer, gamma = _trace_buffer, momentum
  else:  # spec §6.6: C = √r̂ + ε of the applied step u = θ_t − θ_(t−1)
    ga = _gap_aware_penalty(1.0, beta, eps, penalty, per_tensor)
    base_tx, buffer, gamma = T.track_update(base_tx), _last_update, None
  if not coupled:
    return T.gap_feedback(ga, base_tx, previous_buffer=buffer, momentum=gamma)
  if penalize_weight_decay:
    return optax.chain(_weight_decay(weight_decay), T.gap_feedback(
        ga, base_tx, previous_buffer=buffer, momentum=gamma))
  return T.gap_feedback(ga, optax.chain(_weight_decay(weight_decay), base_tx),
                        previous_buffer=buffer, momentum=gamma)


def _dana(learning_rate, momentum, weight_decay, num_workers):
  return optax.chain(_weight_decay(weight_decay),
                     T.dana(learning_rate, momentum, num_workers=num_workers))


def _dana_sa(learning_rate, momentum, weight_decay, num_workers):
  return optax.chain(_weight_decay(weight_decay), T.scale_by_staleness(),
                     T.dana(learning_rate, momentum, num_workers=num_workers))


@takes(beta=BETA, eps=GA_EPS, penalty=PENALTY, per_tensor=PER_TENSOR,
       penalize_weight_decay=PENALIZE_WEIGHT_DECAY,
       gap_against=Choice(("lookahead", "params"),
                          "the look-ahead gap of docs/spec.md §2.8, or θ_t − θ̂_k"))
def _dana_ga(learning_rate, momentum, weight_decay, num_workers, *, beta=0.999, eps=1e-8,
             penalty="one_plus", per_tensor=False, penalize_weight_decay=True,
             gap_against="lookahead"):
  if gap_against not in ("lookahead", "params"):
    raise ConfigError(f"gap_against={gap_against!r} is not allowed: choose 'lookahead' "
                     "(the look-ahead difference of docs/spec.md §2.8) or 'params' (θ_t − θ̂_k).")
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


@takes(variance_control=Real(0, optional=True, meaning=(
           "λ_dc, or λ_0 if adaptive; None: 0.04, or 2.0 if adaptive; docs/spec.md §2.5")),
       adaptive=Bool("λ_dc = λ_0 / √(MS + ε)"),
       decay=Real(0, 1, high_open=True, meaning="m, the decay of the mean square MS"),
       eps=Real(0, low_open=True, meaning="ε of √(MS + ε)"), base=BASE)
def _dc_asgd(learning_rate, momentum, weight_decay, num_workers, *, variance_control=None,
             adaptive=False, decay=0.95, eps=1e-7, base="sgd"):
  del num_workers
  coupled, base_tx = _base(base, learning_rate, momentum, weight_decay)
  return optax.chain(
      T.delay_compensation(variance_control, adaptive=adaptive, decay=decay, eps=eps),
      *([_weight_decay(weight_decay)] if coupled else []), base_tx)


@takes(max_delay=Int(1, meaning="R, the delay at which a job is cancelled; required, "
                             "docs/spec.md §6.2"),
       cancel=Bool("restart jobs at delay R (True) or discard their gradients (False)"))
def _ringmaster_plan(num_workers, *, max_delay=None, cancel=True):
  if cancel:
    return EventPlan(restart_rule=RestartAtDelay(max_delay))
  return EventPlan(discard_rule=DiscardAtDelay(max_delay))


@takes(num_gradients=Int(1, meaning="m ≤ N, the gradients per round; required, "
                                 "docs/spec.md §6.3"))
def _msync_plan(num_workers, *, num_gradients=None):
  return EventPlan(round_rule=FastestRule(num_gradients, num_workers))


@takes(num_gradients=Int(1, meaning="S, the gradients per round; required, "
                                 "docs/spec.md §6.4"))
def _rennala_plan(num_workers, *, num_gradients=None):
  return EventPlan(round_rule=RennalaRule(num_gradients))


def _outer(outer, learning_rate, momentum, num_workers, buffer_size, activation, base="sgd"):
  """The master's rule on pseudo-gradients (docs/spec.md §6.5): no weight decay at the master.

  ``outer``: ``nesterov``, ``delayed_nesterov``, a base optimizer by name, or any
  asynchronous §2 rule of the registry, which ``base`` (docs/spec.md §6.6) puts over an
  adaptive base when the rule takes one (``outer="ga", base="adam"``).
  """
  if outer in ("nesterov", "delayed_nesterov") or outer in BASES:
    if base != "sgd":
      raise ConfigError(f"algorithm_options.base={base!r} is not allowed with "
                        f"outer={outer!r}: only a rule that takes a base does "
                        f"({sorted(_rules_with_base())}); leave base='sgd'.")
  if outer == "nesterov":
    return _nesterov(learning_rate, momentum)
  if outer == "delayed_nesterov":
    b = num_workers if buffer_size is None else buffer_size
    return T.delayed_nesterov(learning_rate, momentum, buffer_size=b, activation=activation)
  if outer in BASES:
    return _base(outer, learning_rate, momentum, 0.0)[1]
  algorithm = ALGORITHMS.get(outer)
  if algorithm is None or algorithm.synchronous or algorithm.plan is not None:
    allowed = list(OUTER_RULES) + sorted(a.name for a in ALGORITHMS.values()
                                         if not a.synchronous and a.plan is None)
    raise ConfigError(f"algorithm_options.outer={outer!r} is not allowed: choose one of "
                     f"{allowed}.")
  if "base" in _keyword_options(algorithm.build):
    return algorithm.build(learning_rate, momentum, 0.0, num_workers, base=base)
  if base != "sgd":
    raise ConfigError(f"algorithm_options.base={base!r} is not allowed with outer={outer!r}: "
                      f"only a rule that takes a base does ({sorted(_rules_with_base())}); "
                      "leave base='sgd'.")
  return algorithm.build(learning_rate, momentum, 0.0, num_workers)


def _rules_with_base():
  return [a.name for a in ALGORITHMS.values() if "base" in _keyword_options(a.build)
          and a.name != "async_local_sgd"]


def _outer_rules() -> tuple[str, ...]:
  """What ``outer`` may name: the rules of :data:`OUTER_RULES`, or an asynchronous
  registry algorithm without an event plan (a §2 rule over its base)."""
  return OUTER_RULES + tuple(sorted(a.name for a in ALGORITHMS.values()
                                    if not a.synchronous and a.plan is None))


@takes(outer=Choice(_outer_rules, "the master's rule on pseudo-gradients, docs/spec.md §6.5"),
       buffer_size=Int(1, optional=True, meaning=(
           "b, master steps between momentum refreshes of outer='delayed_nesterov'; None: N")),
       activation=Real(0, 1, meaning="c, the momentum's share between refreshes"),
       base=BASE)
def _async_local_sgd(learning_rate, momentum, weight_decay, num_workers, *,
                     outer="nesterov", buffer_size=None, activation=0.0, base="sgd"):
  del weight_decay  # the inner optimizer's (decoupled), not the master's
  if buffer_size is not None and outer != "delayed_nesterov":
    raise ConfigError(f"algorithm_options.buffer_size={buffer_size!r} is not allowed with "
                     f"outer={outer!r}: it is the buffer of outer='delayed_nesterov'.")
  if base not in BASES:
    raise ConfigError(f"algorithm_options.base={base!r} is not allowed: choose one of "
                      f"{list(BASES)} (the base under the outer rule, docs/spec.md §6.6).")
  return _outer(outer, learning_rate, momentum, num_workers, buffer_size, activation, base)


@takes(local_steps=Int(1, meaning="H, inner steps per job, docs/spec.md §6.5"),
       inner=Choice(INNER_OPTIMIZERS, "the inner optimizer"),
       inner_learning_rate=Real(0, low_open=True, schedule=True,
                                meaning="of the inner optimizer, or a schedule of the read step"),
       dynamic_local_steps=Bool("DyLU: H_i steps in proportion to worker i's speed"),
       reset_on_rejoin=Bool("a worker rejoining after a failure starts from a fresh inner "
                            "state (docs/spec.md §8.2); false: keeps its own"))
def _async_local_sgd_plan(num_workers, *, local_steps=1, inner="adamw",
                          inner_learning_rate=1e-3, dynamic_local_steps=False,
                          reset_on_rejoin=False):
  return EventPlan(worker_program=LocalSteps(
      local_steps, InnerOptimizer(inner, inner_learning_rate), dynamic=dynamic_local_steps,
      reset_on_rejoin=reset_on_rejoin))


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in [
        Algorithm("sgd", _heavy_ball, colour="#000000",
                  description="heavy-ball SGD (the N = 1 baseline)"),
        Algorithm("asgd", _heavy_ball, colour="#878787",
                  description="asynchronous heavy-ball SGD"),
        Algorithm("nag", _nag, colour="#1b7837",
                  description="NAG-ASGD: one shared Nesterov buffer"),
        Algorithm("sa", _sa, colour="#b35806",
                  description="Staleness-Aware: d / max(τ, 1), then NAG (or base)"),
        Algorithm("ga", _ga, colour="#2166ac",
                  description="Gap-Aware: d ⊘ (1 + |Δ|/C), then NAG (or base)"),
        Algorithm("dana", _dana, colour="#7fbf7b",
                  description="DANA-Zero: per-worker momentum, look-ahead reads"),
        Algorithm("dana_sa", _dana_sa, colour="#f1a340",
                  description="Staleness-Aware, then DANA"),
        Algorithm("dana_ga", _dana_ga, colour="#67a9cf",
                  description="Gap-Aware on look-ahead gaps, then DANA"),
        Algorithm("dc_asgd", _dc_asgd, colour="#762a83",
                  description="delay compensation, then NAG (or base)"),
        Algorithm("delay_adaptive", _delay_adaptive, colour="#c51b7d",
                  description="delay-adaptive: d · min(1, N / max(τ, 1)), then NAG (or base)"),
        Algorithm("ringmaster", _heavy_ball, plan=_ringmaster_plan, colour="#8c510a",
                  description="Ringmaster: jobs reaching delay R are restarted; heavy ball"),
        Algorithm("msync", _nag, synchronous=True, plan=_msync_plan, colour="#01665e",
                  description="m-synchronous: the m fastest of N gradients per round, NAG"),
        Algorithm("rennala", _heavy_ball, synchronous=True, plan=_rennala_plan,
                  colour="#35978f",
                  description="Rennala: the first S gradients of back-to-back jobs per round"),
        Algorithm("async_local_sgd", _async_local_sgd, plan=_async_local_sgd_plan,
                  colour="#d6604d",
                  description="asynchronous local SGD: H inner steps per job, outer rule"),
        Algorithm("ssgd", _nag, synchronous=True, colour="#4d4d4d",
                  description="synchronous SGD: N gradients averaged, then NAG"),
    ]
}
"""The registry, in display order: tables, legends and figures list algorithms in this
dict's iteration order and draw each in its entry's :attr:`Algorithm.colour`."""


_LEARNING_RATE = Real(0, low_open=True, schedule=True, meaning="η, or an optax schedule")
_MOMENTUM = Real(-1, 1, low_open=True, high_open=True, meaning="γ")
_WEIGHT_DECAY = Real(0, meaning="λ")
_NUM_WORKERS = Int(1, meaning="N")


def get_algorithm(name: str) -> Algorithm:
  """The registry entry for ``name``; a clear error for unknown names."""
  if not isinstance(name, str) or name not in ALGORITHMS:
    raise ConfigError(f"algorithm={name!r} is not allowed: choose one of {sorted(ALGORITHMS)}.")
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
  for field, value, spec in (("learning_rate", learning_rate, _LEARNING_RATE),
                             ("momentum", momentum, _MOMENTUM),
                             ("weight_decay", weight_decay, _WEIGHT_DECAY),
                             ("num_workers", num_workers, _NUM_WORKERS)):
    if not isinstance(value, jax.Array):  # a traced or device value is the caller's
      spec.check(field, value)
  algorithm.check_options(options)
  return algorithm.optimizer(learning_rate, momentum, weight_decay, num_workers, options)
