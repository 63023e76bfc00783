"""Declarative checks of option values: each option says what it allows where it is defined.

An algorithm's factory declares its keyword options with :func:`takes`
(``@takes(beta=Real(0, 1, high_open=True), per_tensor=Bool())``); the
:class:`~dana_jax.algorithms.Algorithm` runs the checks in ``check_options``
before anything is built, and the timing models run theirs when they are
constructed. A refused value raises :class:`~dana_jax.errors.ConfigError` with
one line, ``field=value is not allowed: what is allowed.``

The kinds:

* :class:`Bool`: ``True`` or ``False`` only (not 1, not ``"yes"``).
* :class:`Int`: an integer (not a bool, not 2.0) ≥ ``minimum``; ``None`` too if
  ``optional``.
* :class:`Real`: a finite real number (an int is one; a bool is not) in a range
  whose ends may be open; ``None`` too if ``optional``; a callable too if
  ``schedule`` (a learning-rate schedule).
* :class:`Choice`: one of a tuple of values (or of what a function returns,
  for choices known only once a registry exists).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from dana_jax.errors import ConfigError


class Spec:
  """What one option allows; :meth:`check` refuses anything else."""

  optional: bool = False
  meaning: str = ""

  def allowed(self) -> str:
    """The allowed values, in words (the end of the refusal's message)."""
    raise NotImplementedError

  def accepts(self, value) -> bool:
    raise NotImplementedError

  def check(self, field: str, value) -> None:
    """Raises ``ConfigError("field=value is not allowed: <allowed>.")`` unless allowed."""
    if value is None and self.optional:
      return
    if not self.accepts(value):
      raise ConfigError(f"{field}={value!r} is not allowed: {self.describe()}.")

  def describe(self) -> str:
    text = self.allowed() + (" or None" if self.optional else "")
    return f"{text} ({self.meaning})" if self.meaning else text


def is_integer(value) -> bool:
  """An integer: int or numpy integer, not a bool."""
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
  """A finite real number: int, float or numpy scalar, not a bool."""
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(float(value)))


@dataclasses.dataclass(frozen=True)
class Bool(Spec):
  """``True`` or ``False`` (Python or numpy), nothing else."""

  meaning: str = ""

  def allowed(self):
    return "need True or False"

  def accepts(self, value):
    return isinstance(value, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class Int(Spec):
  """An integer ≥ ``minimum`` (and ≤ ``maximum`` when given)."""

  minimum: int = 0
  maximum: int | None = None
  optional: bool = False
  meaning: str = ""

  def allowed(self):
    if self.maximum is not None:
      return f"need an integer in [{self.minimum}, {self.maximum}]"
    return f"need an integer ≥ {self.minimum}"

  def accepts(self, value):
    return (is_integer(value) and value >= self.minimum
            and (self.maximum is None or value <= self.maximum))


@dataclasses.dataclass(frozen=True)
class Real(Spec):
  """A finite real number in the range from ``low`` to ``high`` (each end closed unless
  ``low_open`` / ``high_open``; ±inf: no bound)."""

  low: float = -math.inf
  high: float = math.inf
  low_open: bool = False
  high_open: bool = False
  optional: bool = False
  schedule: bool = False
  meaning: str = ""

  def allowed(self):
    if self.low == -math.inf and self.high == math.inf:
      text = "a finite real number"
    elif self.high == math.inf and self.low == 0 and self.low_open:
      text = "a positive finite real number (> 0)"
    elif self.high == math.inf:
      text = f"a finite real number {'>' if self.low_open else '≥'} {_num(self.low)}"
    elif self.low == -math.inf:
      text = f"a real number {'<' if self.high_open else '≤'} {_num(self.high)}"
    else:
      text = (f"a real number in {'(' if self.low_open else '['}{_num(self.low)}, "
              f"{_num(self.high)}{')' if self.high_open else ']'}")
    return "need " + text + (" or a schedule (a callable)" if self.schedule else "")

  def accepts(self, value):
    if self.schedule and callable(value):
      return True
    if not is_real(value):
      return False
    v = float(value)
    above = v > self.low if self.low_open else v >= self.low
    below = v < self.high if self.high_open else v <= self.high
    return above and below


@dataclasses.dataclass(frozen=True)
class Choice(Spec):
  """One of ``values`` (a tuple, or a function returning one)."""

  values: tuple | Callable[[], tuple] = ()
  meaning: str = ""

  def choices(self) -> tuple:
    return tuple(self.values() if callable(self.values) else self.values)

  @property
  def optional(self):
    return None in self.choices()

  def allowed(self):
    return f"choose one of {[v for v in self.choices() if v is not None]}"

  def accepts(self, value):
    try:
      return any(isinstance(value, type(v)) and not isinstance(value, (bool, np.bool_))
                 and value == v for v in self.choices() if v is not None)
    except (TypeError, ValueError):
      return False


def _num(x: float) -> str:
  return str(int(x)) if float(x).is_integer() else repr(float(x))


def takes(**specs: Spec) -> Callable:
  """Declares the keyword options of a factory and their checks, beside its definition.

  The specs are kept on the function as ``__option_specs__``; ``Algorithm`` reads them.
  """
  def declare(fn):
    fn.__option_specs__ = {**getattr(fn, "__option_specs__", {}), **specs}
    return fn
  return declare


def declared(fn) -> dict[str, Spec]:
  """The option specs :func:`takes` declared on ``fn`` (none: empty)."""
  return dict(getattr(fn, "__option_specs__", {}))


def check_all(prefix: str, specs: dict[str, Spec], values: dict[str, Any]) -> None:
  """Checks each of ``values`` that ``specs`` declares, as ``<prefix>.<name>``."""
  for name, value in values.items():
    if name in specs:
      specs[name].check(f"{prefix}.{name}", value)
