"""The run's environment (docs/spec.md §8): one value made of independent parts.

Everything that decides *when* things happen and *which data* a worker sees:

* ``compute``: how long a worker computes (a :mod:`dana_jax.timing` model);
* ``links`` (:mod:`~dana_jax.environment.links`): latency and bandwidth of each worker's
  pull and push, a master that receives one message at a time, the round's collective;
* ``availability`` (:mod:`~dana_jax.environment.availability`): failures, preemption,
  rejoins;
* ``speed`` (:mod:`~dana_jax.environment.speed`): slowdowns that come and go;
* ``placement`` (:mod:`~dana_jax.environment.placement`): a global data stream or data
  that differs per worker.

Every part depends only on the environment's seed (a replica's timing seed), never on
training, so the schedule is still computed before training and batched; with every part
at its default (free links, always up, constant speeds, one global stream) the run is
the one of docs/spec.md §1–§7, bit for bit.

A user-defined part plugs in by having the same methods as the built-in ones: an
availability process has ``periods(num_workers, seed)`` returning a
:class:`~dana_jax.environment.availability.DownPeriods`, ``validate(num_workers)`` and
``is_default = False``; a speed process ``slowdowns(num_workers, seed)`` returning
:class:`~dana_jax.environment.speed.Slowdowns`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from dana_jax.environment.availability import (
  AVAILABILITY,
  AlwaysUp,
  DownPeriods,
  SpotTrace,
  UpDown,
)
from dana_jax.environment.links import COLLECTIVES, Links, LinkTimes
from dana_jax.environment.placement import (
  PLACEMENTS,
  Dirichlet,
  GlobalData,
  Labels,
  Shards,
  WorkerDataOrder,
)
from dana_jax.environment.speed import (
  SPEED,
  ConstantSpeed,
  Slowdowns,
  StepSlowdown,
  StragglerChain,
)
from dana_jax.errors import ConfigError
from dana_jax.timing import TIMING_MODELS, TimingModel, homogeneous, make_timing


@dataclasses.dataclass(frozen=True, eq=False)
class Environment:
  """A run's environment (docs/spec.md §8): compute timing, links, availability, speed
  changes and data placement, each an independent part.

  Attributes:
    compute: the timing model of the workers' batch times (``dana_jax.timing``;
      None: the GA paper's homogeneous environment).
    links: :class:`~dana_jax.environment.links.Links` (free by default).
    availability: :class:`AlwaysUp` (default), :class:`UpDown`, :class:`SpotTrace`, or a
      user-defined process with the same methods.
    speed: :class:`ConstantSpeed` (default), :class:`StragglerChain`,
      :class:`StepSlowdown`, or a user-defined process.
    placement: :class:`GlobalData` (default) or a per-worker placement
      (``dana_jax.environment.placement``).
  """

  compute: Any = None
  links: Any = dataclasses.field(default_factory=Links)
  availability: Any = dataclasses.field(default_factory=AlwaysUp)
  speed: Any = dataclasses.field(default_factory=ConstantSpeed)
  placement: Any = dataclasses.field(default_factory=GlobalData)

  def __post_init__(self):
    if self.compute is None:
      object.__setattr__(self, "compute", homogeneous())
    if not isinstance(self.compute, TimingModel):
      raise ConfigError(f"environment.compute={type(self.compute).__name__} is not allowed: "
                        f"use a timing model of dana_jax.timing ({sorted(TIMING_MODELS)}).")
    if not isinstance(self.links, Links):
      raise ConfigError(f"environment.links={type(self.links).__name__} is not allowed: "
                        "use dana_jax.environment.Links(...).")
    for part, needs in (("availability", "periods"), ("speed", "slowdowns")):
      value = getattr(self, part)
      if not (callable(getattr(value, needs, None)) and hasattr(value, "is_default")):
        raise ConfigError(f"environment.{part}={type(value).__name__} is not allowed: it "
                          f"needs a {needs}(num_workers, seed) method and is_default "
                          f"(the built-in ones: {sorted(ENVIRONMENT_PARTS[part])}).")

  def times_default(self) -> bool:
    """Links, availability and speed at their defaults: the events are §1's."""
    return self.links.is_free and self.availability.is_default and self.speed.is_default

  def is_default(self) -> bool:
    """Every part but compute at its default: the run is docs/spec.md §1–§7's."""
    return self.times_default() and getattr(self.placement, "is_default", False)

  def validate(self, num_workers: int) -> None:
    """Refuses parts that cannot drive ``num_workers`` workers (per-worker lists)."""
    self.compute.validate(num_workers)
    self.links.validate(num_workers)
    self.availability.validate(num_workers)
    self.speed.validate(num_workers)
    validate = getattr(self.placement, "validate", None)
    if validate is not None:
      validate(num_workers)

  def describe(self) -> dict:
    """The parts that are not at their default, as ``{part: repr}`` (for fingerprints)."""
    out = {}
    if not self.links.is_free:
      out["links"] = repr(self.links)
    for part in ("availability", "speed", "placement"):
      value = getattr(self, part)
      if not getattr(value, "is_default", False):
        out[part] = repr(value)
    return out


# Every part by name. ``compute``, ``availability``, ``speed`` and ``placement`` are chosen
# by ``name``; ``links`` has one kind, its arguments given directly.
ENVIRONMENT_PARTS = {"compute": TIMING_MODELS, "links": {"links": Links},
                     "availability": AVAILABILITY, "speed": SPEED, "placement": PLACEMENTS}


def _named(part: str, given):
  """A part from ``given``: None (its default), the part itself, or a dict of its
  arguments (with ``name`` unless it is ``links``)."""
  if given is None or not isinstance(given, dict):
    return given
  arguments = dict(given)
  if part == "compute":
    name = arguments.pop("name", "homogeneous")
    try:
      return make_timing(name, **arguments)
    except ConfigError as e:
      raise ConfigError(f"environment.compute: {e}") from None
  if part == "links":
    if "name" in arguments:
      raise ConfigError(f"environment.links.name={arguments['name']!r} is not allowed: "
                        "links take their arguments directly (latency=, bandwidth=, …).")
    factory = Links
  else:
    registry = ENVIRONMENT_PARTS[part]
    name = arguments.pop("name", None)
    if name not in registry:
      raise ConfigError(f"environment.{part}.name={name!r} is not allowed: choose one of "
                        f"{sorted(registry)}.")
    factory = registry[name]
  takes = inspect.signature(factory).parameters
  for key in arguments:
    if key not in takes:
      raise ConfigError(f"environment.{part}.{key} is not allowed here: "
                        f"{factory.__name__} takes {sorted(takes)}.")
  for key, parameter in takes.items():
    if parameter.default is inspect.Parameter.empty and key not in arguments:
      raise ConfigError(f"environment.{part}.{key} is missing: {factory.__name__} needs it "
                        f"(it takes {sorted(takes)}).")
  try:
    return factory(**arguments)
  except TypeError as e:
    raise ConfigError(f"environment.{part}={given!r} is not allowed: {e}.") from None


def make_environment(compute=None, links=None, availability=None, speed=None,
                     placement=None) -> Environment:
  """An :class:`Environment` from its parts, each None (its default), the part itself, or
  a dict of its constructor's arguments with ``name`` (``links``: without a name)::

      make_environment(compute=dict(name="heterogeneous", worker_speed_shape=2.0),
                       links=dict(latency=10.0, bandwidth=1e5),
                       availability=dict(name="up_down", mtbf=20000.0, mttr=1280.0))
  """
  parts = dict(compute=compute, links=links, availability=availability, speed=speed,
               placement=placement)
  built = {part: _named(part, value) for part, value in parts.items()}
  return Environment(**{k: v for k, v in built.items() if v is not None})


def part_arguments(part: str, name: str = "links") -> dict[str, str]:
  """What ``make_environment`` takes for part ``part`` of kind ``name``: each argument with
  its default and (from the docstring) what it means (what ``--help`` lists)."""
  if part not in ENVIRONMENT_PARTS or name not in ENVIRONMENT_PARTS[part]:
    raise ConfigError(f"environment.{part}.name={name!r} is not allowed: choose one of "
                      f"{sorted(ENVIRONMENT_PARTS.get(part, {}))}.")
  if part == "compute":
    from dana_jax.timing import timing_arguments
    return timing_arguments(name)
  factory = ENVIRONMENT_PARTS[part][name]
  described = getattr(factory, "arguments", {})
  out = {}
  for key, parameter in inspect.signature(factory).parameters.items():
    default = parameter.default
    out[key] = described.get(key, key) + ("" if default is inspect.Parameter.empty
                                          else f"; default {default!r}")
  return out


__all__ = [
    "AVAILABILITY", "COLLECTIVES", "ENVIRONMENT_PARTS", "PLACEMENTS", "SPEED", "AlwaysUp",
    "ConstantSpeed", "Dirichlet", "DownPeriods", "Environment", "GlobalData", "Labels",
    "LinkTimes", "Links", "Shards", "Slowdowns", "SpotTrace", "StepSlowdown", "StragglerChain",
    "UpDown", "WorkerDataOrder",
    "make_environment", "part_arguments",
]
