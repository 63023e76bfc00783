"""The speedup model and the timing densities (GA paper, Figures 12 and 3).

    python -m experiments.speedup [--workdir=runs/speedup] [--config.runs=20]
        [--config.iterations=100000] [--config.num_workers=1,2,4,8,16,32,64,128]

The command line of every experiment (:mod:`experiments.cli`, ``--help``; config
``experiments/configs/speedup.py``). Monte Carlo over the timing model
(communication not modelled): the speedup of N workers over one for ASGD and
SSGD; and the homogeneous (shape 100) and heterogeneous (shape 4) gamma
densities with P(X > 1.25·mean) shaded. Writes ``speedup.json``,
``densities.json``, ``speedup.md`` and the two figures. Every field and the
work directory are checked before anything is written. Runtime: see
results/README.md (speedup/).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time

import numpy as np

from dana_jax import schedule as S
from dana_jax import timing as TM
from experiments import validate


def gamma_density(x, shape, scale):
  """The gamma pdf, in log space for large shapes."""
  x = np.asarray(x, float)
  log_pdf = ((shape - 1) * np.log(x) - x / scale - math.lgamma(shape) - shape * math.log(scale))
  return np.exp(log_pdf)


def densities(models: dict[str, TM.GammaTiming]) -> dict:
  out = []
  for name, timing in models.items():
    mean = timing.mean()
    x = np.linspace(1e-3, 3 * mean, 3000)
    fine = np.linspace(1.25 * mean, 20 * mean, 200_000)
    tail = float(np.trapezoid(gamma_density(fine, timing.shape, timing.scale), fine))
    out.append({"name": name, "shape": timing.shape, "scale": timing.scale, "mean": mean,
                "x": x.tolist(), "density": gamma_density(x, timing.shape, timing.scale).tolist(),
                "tail": tail})
  return {"models": out}


def _require(ok: bool, field: str, value, allowed: str) -> None:
  if not ok:
    raise validate.ConfigError(f"config.{field}={value!r} is not allowed: {allowed}.")


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def peak_bytes(config) -> int:
  """The Monte Carlo's peak host memory: one run at the largest N holds its SSGD rounds'
  N × iterations batch times and a few arrays of the ASGD completions (about
  8 · iterations · (2 N + 8) bytes, as measured with tracemalloc)."""
  return 8 * config.iterations * (2 * max(config.num_workers) + 8)


def validate_config(config) -> None:
  """Raises :class:`experiments.validate.ConfigError` for the first field not allowed."""
  for field in ("runs", "iterations"):
    value = config.get(field)
    _require(_is_int(value) and value >= 1, field, value, "need an integer ≥ 1")
  workers = config.get("num_workers")
  _require(isinstance(workers, (tuple, list)) and bool(workers) and
           all(_is_int(n) and n >= 1 for n in workers), "num_workers", workers,
           "need a non-empty tuple of integers ≥ 1, e.g. 1,4,16")
  _require(len(set(workers)) == len(workers), "num_workers", workers,
           "each N once")
  need = peak_bytes(config)
  try:
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    have = None
  if have is not None and need > have // 2:
    raise validate.ConfigError(
        f"config.iterations={config.iterations} with config.num_workers={tuple(workers)} is "
        f"not allowed: at N = {max(workers)} the Monte Carlo needs about "
        f"{need / 2**30:.1f} GiB, more than half of this machine's {have / 2**30:.1f} GiB; "
        "use fewer iterations or a smaller N.")


def run(config, workdir) -> None:
  """Checks ``config`` and ``workdir``, then writes the speedup table and both figures."""
  from experiments import plot, train
  validate_config(config)
  workdir = pathlib.Path(workdir)
  train.check_workdir(workdir)
  workers = [int(n) for n in config.num_workers]
  began = time.perf_counter()
  est = S.estimate_speedup(TM.homogeneous(), workers, num_runs=config.runs,
                           num_iterations=config.iterations)
  seconds = time.perf_counter() - began
  result = {k: np.asarray(v).tolist() for k, v in est.items()}
  result.update(timing="homogeneous Gamma(100, 1.28)", runs=config.runs,
                iterations=config.iterations, seconds=seconds)
  workdir.mkdir(parents=True, exist_ok=True)  # only once the numbers exist
  (workdir / "speedup.json").write_text(json.dumps(result, indent=2))
  (workdir / "densities.json").write_text(json.dumps(densities(
      {"homogeneous": TM.homogeneous(), "heterogeneous": TM.heterogeneous()})))
  lines = ["| N | ASGD | SSGD |", "|---|---|---|"]
  lines += [f"| {n} | {a:.2f} ± {sa:.2f} | {s:.2f} ± {ss:.2f} |" for n, a, sa, s, ss in zip(
      result["num_workers"], result["asgd"], result["asgd_std"], result["ssgd"],
      result["ssgd_std"], strict=True)]
  (workdir / "speedup.md").write_text("\n".join(lines) + "\n")
  plot.plot_speedup(workdir / "speedup.json", workdir / "speedup")
  plot.plot_gamma_densities(workdir / "densities.json", workdir / "gamma_densities")
  print("\n".join(lines))
  print(f"{seconds:.1f} s of Monte Carlo; wrote {workdir}")


if __name__ == "__main__":
  from experiments import main
  main.run("speedup")
