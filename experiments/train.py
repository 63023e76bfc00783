"""The sweep driver's entry points, as notebooks and scripts import them.

The driver is in pieces found by name:

* :mod:`experiments.datasets`: the data a sweep trains and evaluates on;
* :mod:`experiments.builders`: the library's components of a point, built from
  the config's sub-dicts as keyword arguments (timing, simulator, model);
* :mod:`experiments.devices`: ``jax.distributed``, the mesh, which process writes;
* :mod:`experiments.preflight`: every check before a run directory is written;
* :mod:`experiments.sweep`: a sweep's points and the loop over them;
* :mod:`experiments.point`: running one point, its summaries;
* :mod:`experiments.runwriter`: writing run files (reading: :mod:`experiments.runfiles`).
"""

from __future__ import annotations

from experiments.builders import build_simulator, options_for
from experiments.datasets import Dataset, load_data
from experiments.devices import setup_devices, writer
from experiments.point import run_point, stopped_learning_at
from experiments.preflight import check_workdir
from experiments.sweep import estimate_runtime, result_line, run_sweep, sweep_points

__all__ = ["Dataset", "build_simulator", "check_workdir", "estimate_runtime", "load_data",
           "options_for", "result_line", "run_point", "run_sweep", "setup_devices",
           "stopped_learning_at", "sweep_points", "writer"]
