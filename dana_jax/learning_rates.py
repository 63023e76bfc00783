"""The GA paper's learning-rate schedule (SPEC §3) as a traceable optax schedule."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp


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
    raise ValueError(f"steps_per_epoch={steps_per_epoch!r} is not allowed: need > 0.")
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
