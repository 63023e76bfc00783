"""dana_jax: exact, fast simulation of asynchronous data-parallel SGD in JAX.

Implements the methods of Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of
Gradient Staleness", ICLR 2020 (arXiv:1909.10802), as optax transforms, and an
engine that simulates one parameter server and N workers exactly.
"""

from dana_jax import schedule, sharding, timing, transforms
from dana_jax.algorithms import ALGORITHMS, Algorithm, get_algorithm, optimizer
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
from dana_jax.errors import ConfigError
from dana_jax.learning_rates import InEpochs, paper_in_epochs, paper_schedule
from dana_jax.schedule import (
    ConstantTiming,
    GammaTiming,
    TraceTiming,
    estimate_speedup,
    heterogeneous,
    homogeneous,
    make_schedule,
)
from dana_jax.sharding import make_mesh

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS", "METRICS", "REPLICA_EXECUTIONS", "Algorithm", "ArrayData", "ConfigError",
    "ConstantTiming", "GammaTiming", "HostData", "Hyperparams", "InEpochs", "Model",
    "Result", "RunSpec", "SimState", "Simulator", "TraceTiming", "check_size", "check_timing",
    "default_replica_execution",
    "estimate_speedup", "evaluate",
    "get_algorithm", "heterogeneous", "homogeneous", "make_mesh", "make_schedule",
    "metric_names", "optimizer",
    "paper_in_epochs", "paper_schedule", "replica", "schedule", "sharding", "simulate",
    "timing", "transforms",
]
