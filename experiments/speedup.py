"""The speedup model and the timing densities (GA paper, Figures 12 and 3).

    python -m experiments.speedup [--workdir runs/speedup] [--runs 20] [--iterations 100000]

Monte Carlo over the timing model (communication not modelled): the speedup
of N workers over one for ASGD and SSGD, N ∈ {1, 2, 4, …, 128}; and the
homogeneous (shape 100) and heterogeneous (shape 4) gamma densities with
P(X > 1.25·mean) shaded. Writes ``speedup.json``, ``densities.json``,
``speedup.md`` and the two figures. Runtime: see results/speedup/README.md.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import numpy as np
from absl import app, flags

from dana_jax import schedule as S

_WORKDIR = flags.DEFINE_string("workdir", "runs/speedup", "where results are written")
_RUNS = flags.DEFINE_integer("runs", 20, "Monte-Carlo runs per N")
_ITERATIONS = flags.DEFINE_integer("iterations", 100_000, "iterations per run")
_WORKERS = flags.DEFINE_list("workers", ["1", "2", "4", "8", "16", "32", "64", "128"],
                             "numbers of workers")


def gamma_density(x, shape, scale):
  """The gamma pdf, in log space for large shapes."""
  x = np.asarray(x, float)
  log_pdf = ((shape - 1) * np.log(x) - x / scale - math.lgamma(shape) - shape * math.log(scale))
  return np.exp(log_pdf)


def densities(models: dict[str, S.GammaTiming]) -> dict:
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


def main(argv):
  del argv
  from experiments import plot

  workdir = pathlib.Path(_WORKDIR.value)
  workdir.mkdir(parents=True, exist_ok=True)
  workers = [int(n) for n in _WORKERS.value]
  began = time.perf_counter()
  est = S.estimate_speedup(S.homogeneous(), workers, num_runs=_RUNS.value,
                           num_iterations=_ITERATIONS.value)
  seconds = time.perf_counter() - began
  result = {k: np.asarray(v).tolist() for k, v in est.items()}
  result.update(timing="homogeneous Gamma(100, 1.28)", runs=_RUNS.value,
                iterations=_ITERATIONS.value, seconds=seconds)
  (workdir / "speedup.json").write_text(json.dumps(result, indent=2))
  (workdir / "densities.json").write_text(json.dumps(densities(
      {"homogeneous": S.homogeneous(), "heterogeneous": S.heterogeneous()})))
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
  app.run(main)
