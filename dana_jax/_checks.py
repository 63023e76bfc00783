"""The one way the library refuses a value: a ValueError naming the field, the value
and what is allowed."""

from __future__ import annotations

from dana_jax.errors import ConfigError


def require(condition, field: str, value, allowed: str) -> None:
  """Raises ``ValueError("field=value is not allowed: allowed.")`` unless ``condition``."""
  if not condition:
    raise ConfigError(f"{field}={value!r} is not allowed: {allowed}.")


def is_int(value, minimum: int | None = None) -> bool:
  """An integer (not a bool), at least ``minimum`` when given."""
  import numpy as np

  ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
  return ok and (minimum is None or value >= minimum)
