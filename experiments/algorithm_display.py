"""How a report shows an algorithm: its place in tables and legends, and its colour.

Both come from the registry, :data:`dana_jax.ALGORITHMS`: its iteration order
is the display order and each entry's :attr:`dana_jax.Algorithm.colour` its
colour, so a new algorithm is drawn and listed once it is registered. A name
the registry does not know (a user's own algorithm, or a grid cell's label)
sorts after the registry's, alphabetically, and is drawn in a colour of
matplotlib's cycle by its position among such names.
"""

from __future__ import annotations

import dana_jax as dj


def ordered(algorithms) -> list[str]:
  """The distinct names of ``algorithms`` in the registry's order, other names after
  (alphabetically)."""
  rank = {name: i for i, name in enumerate(dj.ALGORITHMS)}
  return sorted(set(algorithms), key=lambda a: (rank.get(a, len(rank)), a))


def registered(names) -> list[str]:
  """The registry's algorithms among ``names``, in the registry's order."""
  return [a for a in ordered(names) if a in dj.ALGORITHMS]


def _registry_colour(algorithm: str) -> str | None:
  entry = dj.ALGORITHMS.get(algorithm)
  return None if entry is None else entry.colour


def colour(algorithm: str, others=()) -> str:
  """The algorithm's registry colour; one without (unknown, or a grid cell's label) gets
  matplotlib's cycle colour ``C<k>``, k its position among such names of ``others`` in
  :func:`ordered` order (``C0`` when it is not among them)."""
  fixed = _registry_colour(algorithm)
  if fixed is not None:
    return fixed
  unknown = [a for a in ordered(others) if _registry_colour(a) is None]
  return f"C{unknown.index(algorithm) % 10}" if algorithm in unknown else "C0"
