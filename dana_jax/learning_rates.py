"""Learning-rate schedules: the GA paper's (docs/spec.md §3) as a traceable optax schedule,
per master step (:func:`paper_learning_rate`) or in epochs (:class:`InEpochs`, resolved
by the simulator; :func:`paper_in_epochs`).

"Schedule" alone names the event schedule (:mod:`dana_jax.schedule`);
``paper_schedule`` is a deprecated alias of :func:`paper_learning_rate`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from dana_jax.errors import ConfigError
from dana_jax.specs import Int, Real, is_real

_STEPS_PER_EPOCH = Real(0, low_open=True, meaning="master steps per epoch")
_NUM_WORKERS = Int(1, meaning="N: the warm-up starts at η/N")
_WARMUP = Real(0, meaning="epochs of linear warm-up")
_DECAY_FACTOR = Real(0, low_open=True, meaning="the factor at each decay epoch")


def _check_paper_args(num_workers, warmup_epochs, decay_epochs, decay_factor) -> None:
  _NUM_WORKERS.check("num_workers", num_workers)
  _WARMUP.check("warmup_epochs", warmup_epochs)
  ok = np.iterable(decay_epochs) and not isinstance(decay_epochs, (str, bytes))
  epochs = list(decay_epochs) if ok else []
  ok = ok and all(is_real(e) and e >= 0 for e in epochs) and all(
      a <= b for a, b in zip(epochs, epochs[1:]))
  if not ok:
    raise ConfigError(f"decay_epochs={decay_epochs!r} is not allowed: need a non-decreasing "
                      "sequence of epochs ≥ 0.")
  _DECAY_FACTOR.check("decay_factor", decay_factor)


def paper_learning_rate(base_learning_rate, *, steps_per_epoch: float, num_workers: int = 1,
                   warmup_epochs: float = 5.0, decay_epochs: Sequence[float] = (80, 120),
                   decay_factor: float = 0.1):
  """Linear warm-up from η/N to η over ``warmup_epochs``, then ×``decay_factor`` at each
  of ``decay_epochs``; per master step.

  ``base_learning_rate`` may be a traced scalar, so replicas can differ in η.

  Returns:
    A function of the master step count, usable wherever optax takes a schedule.
  """
  # Fractional for synchronous rounds of N gradients (docs/spec.md §2.9).
  _STEPS_PER_EPOCH.check("steps_per_epoch", steps_per_epoch)
  _check_paper_args(num_workers, warmup_epochs, decay_epochs, decay_factor)
  warmup_steps = warmup_epochs * steps_per_epoch
  dtype = jnp.result_type(float)  # float32, or float64 under jax_enable_x64
  boundaries = jnp.asarray([e * steps_per_epoch for e in decay_epochs], dtype)

  def learning_rate(count):
    step = jnp.asarray(count, dtype)
    base = jnp.asarray(base_learning_rate, dtype)
    start = base / num_workers
    if warmup_steps > 0:
      warm = start + (base - start) * jnp.minimum(step / warmup_steps, 1.0)
    else:
      warm = base
    decays = jnp.sum(step >= boundaries) if len(decay_epochs) else 0
    return warm * decay_factor ** decays

  return learning_rate


@dataclasses.dataclass(frozen=True)
class InEpochs:
  """A learning-rate schedule in epochs: ``fn(base_lr, epoch) -> lr``.

  ``epoch`` is a traced float (fractional inside an epoch: master step / steps
  per epoch). Given as ``Simulator(learning_rate_schedule=InEpochs(...))``, the
  simulator supplies its own steps per epoch (spec §2.9: G gradients per
  round, H batches per job, the expected H_i with DyLU), so a schedule can be
  written before anyone knows that number. E.g. a cosine decay over 20 epochs:
  ``InEpochs(lambda base, e: base * optax.cosine_decay_schedule(1.0, 20)(e))``.
  """
  fn: Callable

  def __post_init__(self):
    if not callable(self.fn):
      raise ConfigError(f"InEpochs.fn={type(self.fn).__name__} is not allowed: need a "
                        "function (base_lr, epoch) -> lr.")

  def at(self, base_learning_rate, steps_per_epoch: float):
    """The per-step schedule for ``steps_per_epoch``."""
    _STEPS_PER_EPOCH.check("steps_per_epoch", steps_per_epoch)
    dtype = jnp.result_type(float)
    return lambda count: self.fn(base_learning_rate,
                                 jnp.asarray(count, dtype) / jnp.asarray(steps_per_epoch, dtype))


def paper_in_epochs(*, num_workers: int = 1, warmup_epochs: float = 5.0,
                    decay_epochs: Sequence[float] = (80, 120),
                    decay_factor: float = 0.1) -> InEpochs:
  """:func:`paper_learning_rate` in epochs: warm-up from η/N over ``warmup_epochs``, then
  ×``decay_factor`` at each of ``decay_epochs`` — no steps per epoch needed. (Equal to
  ``paper_learning_rate`` with the simulator's steps per epoch up to float rounding of
  step / steps per epoch.)"""
  _check_paper_args(num_workers, warmup_epochs, decay_epochs, decay_factor)
  return InEpochs(lambda base, epoch: paper_learning_rate(
      base, steps_per_epoch=1.0, num_workers=num_workers, warmup_epochs=warmup_epochs,
      decay_epochs=decay_epochs, decay_factor=decay_factor)(epoch))


def __getattr__(name: str):
  """``paper_schedule``: a deprecated alias of :func:`paper_learning_rate`."""
  if name == "paper_schedule":
    warnings.warn("paper_schedule is deprecated: use paper_learning_rate (a learning-rate "
                  "schedule; 'schedule' names the event schedule).", DeprecationWarning,
                  stacklevel=2)
    return paper_learning_rate
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
