"""The GA paper's learning-rate schedule (SPEC §3) as a traceable optax schedule, per
master step or in epochs (:class:`InEpochs`, resolved by the simulator)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax.numpy as jnp

from dana_jax.errors import ConfigError


def paper_schedule(base_learning_rate, *, steps_per_epoch: float, num_workers: int = 1,
                   warmup_epochs: float = 5.0, decay_epochs: Sequence[float] = (80, 120),
                   decay_factor: float = 0.1):
  """Linear warm-up from η/N to η over ``warmup_epochs``, then ×``decay_factor`` at each
  of ``decay_epochs``; per master step.

  ``base_learning_rate`` may be a traced scalar, so replicas can differ in η.

  Returns:
    A function of the master step count, usable wherever optax takes a schedule.
  """
  if not steps_per_epoch > 0:  # fractional for synchronous rounds of N gradients (SPEC §2.9)
    raise ConfigError(f"steps_per_epoch={steps_per_epoch!r} is not allowed: need > 0.")
  warmup_steps = warmup_epochs * steps_per_epoch
  dtype = jnp.result_type(float)  # float32, or float64 under jax_enable_x64
  boundaries = jnp.asarray([e * steps_per_epoch for e in decay_epochs], dtype)

  def schedule(count):
    step = jnp.asarray(count, dtype)
    base = jnp.asarray(base_learning_rate, dtype)
    start = base / num_workers
    if warmup_steps > 0:
      warm = start + (base - start) * jnp.minimum(step / warmup_steps, 1.0)
    else:
      warm = base
    decays = jnp.sum(step >= boundaries) if len(decay_epochs) else 0
    return warm * decay_factor ** decays

  return schedule


@dataclasses.dataclass(frozen=True)
class InEpochs:
  """A learning-rate schedule in epochs: ``fn(base_lr, epoch) -> lr``.

  ``epoch`` is a traced float (fractional inside an epoch: master step / steps
  per epoch). Given as ``Simulator(learning_rate_schedule=InEpochs(...))``, the
  simulator supplies its own steps per epoch (SPEC §2.9: G gradients per
  round, H batches per job, the expected H_i with DyLU), so a schedule can be
  written before anyone knows that number. E.g. a cosine decay over 20 epochs:
  ``InEpochs(lambda base, e: base * optax.cosine_decay_schedule(1.0, 20)(e))``.
  """
  fn: Callable

  def at(self, base_learning_rate, steps_per_epoch: float):
    """The per-step schedule for ``steps_per_epoch``."""
    if not steps_per_epoch > 0:
      raise ConfigError(f"steps_per_epoch={steps_per_epoch!r} is not allowed: need > 0.")
    dtype = jnp.result_type(float)
    return lambda count: self.fn(base_learning_rate,
                                 jnp.asarray(count, dtype) / jnp.asarray(steps_per_epoch, dtype))


def paper_in_epochs(*, num_workers: int = 1, warmup_epochs: float = 5.0,
                    decay_epochs: Sequence[float] = (80, 120),
                    decay_factor: float = 0.1) -> InEpochs:
  """:func:`paper_schedule` in epochs: warm-up from η/N over ``warmup_epochs``, then
  ×``decay_factor`` at each of ``decay_epochs`` — no steps per epoch needed. (Equal to
  ``paper_schedule`` with the simulator's steps per epoch up to float rounding of
  step / steps per epoch.)"""
  return InEpochs(lambda base, epoch: paper_schedule(
      base, steps_per_epoch=1.0, num_workers=num_workers, warmup_epochs=warmup_epochs,
      decay_epochs=decay_epochs, decay_factor=decay_factor)(epoch))
