"""Shared checks of the environment's parts: a value that is one number or one per worker,
and every random part's own per-worker numpy streams (docs/spec.md §8)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from dana_jax._checks import require as _require


def check_per_worker(field: str, value, *, low: float = 0.0, low_open: bool = False,
                     infinite: bool = False, meaning: str = "") -> None:
  """Refuses a value that is neither a number nor a non-empty list of numbers in range:
  ``low`` < v (``low_open``) or ≤ v, finite unless ``infinite``."""
  values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
  bound = f"> {low:g}" if low_open else f"≥ {low:g}"
  allowed = (f"need a number {bound}{'' if infinite else ' (finite)'} or one per worker"
             + (f" ({meaning})" if meaning else ""))
  _require(len(values) >= 1 and all(_number(v) for v in values), field, value, allowed)
  ok = all((v > low if low_open else v >= low) and (infinite or math.isfinite(v))
           and not math.isnan(v) for v in map(float, values))
  _require(ok, field, value, allowed)


def _number(value) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def per_worker(field: str, value, num_workers: int) -> np.ndarray:
  """``value`` as float64 [N]: a number repeated, or a list of exactly N."""
  array = np.asarray(value, np.float64)
  if array.ndim == 0:
    return np.full(num_workers, float(array))
  _require(array.shape == (num_workers,), field, list(np.asarray(value).tolist()),
           f"a per-worker list needs one value per worker (num_workers={num_workers})")
  return array.copy()


def part_streams(seed: int, tag: int, num_workers: int) -> list[np.random.Generator]:
  """Worker i's stream of one part: ``SeedSequence([seed, tag, i])`` — its own, so that the
  compute draws (and every other part's) are those of a run without this part."""
  return [np.random.default_rng([int(seed), tag, i]) for i in range(num_workers)]
