"""dana_jax: exact, fast simulation of asynchronous data-parallel SGD in JAX.

Implements the methods of Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of
Gradient Staleness", ICLR 2020 (arXiv:1909.10802), as optax transforms, and an
engine that simulates one parameter server and N workers exactly.

Deprecated aliases (kept for one release, each warns): ``paper_schedule`` (use
:func:`paper_learning_rate`) and ``schedule_rules`` (the event and round rules are in
:mod:`dana_jax.schedule`).
"""

import warnings

from dana_jax import cost, environment, schedule, sharding, timing, transforms, trees
from dana_jax.algorithms import ALGORITHMS, Algorithm, EventPlan, get_algorithm, optimizer
from dana_jax.engine import (
    METRICS,
    REPLICA_EXECUTIONS,
    ArrayData,
    HostData,
    Hyperparams,
    Model,
    Result,
    RunSpec,
    SimState,
    Simulator,
    check_size,
    check_timing,
    default_replica_execution,
    evaluate,
    metric_names,
    replica,
    simulate,
)
from dana_jax.engine.flax_adapter import flax_model
from dana_jax.errors import ConfigError
from dana_jax.learning_rates import InEpochs, paper_in_epochs, paper_learning_rate
from dana_jax.schedule import estimate_speedup, make_schedule
from dana_jax.sharding import make_mesh
from dana_jax.timing import ConstantTiming, GammaTiming, TraceTiming, heterogeneous, homogeneous

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS", "METRICS", "REPLICA_EXECUTIONS", "Algorithm", "ArrayData", "ConfigError",
    "ConstantTiming", "EventPlan", "GammaTiming", "HostData", "Hyperparams", "InEpochs", "Model",
    "Result", "RunSpec", "SimState", "Simulator", "TraceTiming", "check_size", "check_timing",
    "default_replica_execution", "estimate_speedup", "evaluate", "flax_model",
    "get_algorithm", "heterogeneous", "homogeneous", "make_mesh", "make_schedule",
    "metric_names", "optimizer", "paper_in_epochs", "paper_learning_rate", "replica",
    "cost", "environment", "schedule", "sharding", "simulate", "timing", "transforms", "trees",
]


def __getattr__(name: str):
  """The deprecated aliases: ``paper_schedule`` and ``schedule_rules``."""
  if name == "paper_schedule":
    warnings.warn("dana_jax.paper_schedule is deprecated: use dana_jax.paper_learning_rate.",
                  DeprecationWarning, stacklevel=2)
    return paper_learning_rate
  if name == "schedule_rules":
    warnings.warn("dana_jax.schedule_rules is deprecated: its rules are in dana_jax.schedule "
                  "(dana_jax.schedule.events and dana_jax.schedule.rounds).",
                  DeprecationWarning, stacklevel=2)
    return schedule
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
