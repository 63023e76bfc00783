"""The Monte-Carlo speedup model of ASGD and SSGD (the GA paper's Figure 12).

References:
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), Figure 12.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.schedule.events import completion_order
from dana_jax.schedule.rounds import synchronous_times
from dana_jax.timing import TIMING_MODELS, TimingModel


def estimate_speedup(timing: TimingModel, num_workers: Sequence[int], *,
                     num_runs: int = 20, num_iterations: int = 100_000,
                     seed: int = 0) -> dict[str, np.ndarray]:
  """Monte-Carlo speedup of N workers over one, for ASGD and SSGD.

  Speedup is gradients per unit of simulated time relative to one worker of
  mean batch time ``timing.mean()``; communication is not modelled. ASGD
  completes ``num_iterations`` gradients by the ``num_iterations``-th
  completion over all workers; SSGD computes N gradients per iteration and an
  iteration takes max_i X_i.

  Returns:
    ``{"num_workers", "asgd", "ssgd"}`` with the mean over runs, and
    ``"asgd_std"``, ``"ssgd_std"``.
  """
  _require(isinstance(timing, TimingModel), "timing", type(timing).__name__,
           f"use one of the timing models {sorted(TIMING_MODELS)}")
  _require(np.iterable(num_workers) and not isinstance(num_workers, str)
           and len(list(num_workers)) >= 1 and all(is_int(n, 1) for n in num_workers),
           "num_workers", num_workers, "need a sequence of integers ≥ 1")
  _require(is_int(num_runs, 1), "num_runs", num_runs, "need an integer ≥ 1")
  _require(is_int(num_iterations, 1), "num_iterations", num_iterations,
           "need an integer ≥ 1")
  _require(is_int(seed), "seed", seed, "need an integer")
  mean = timing.mean()
  asgd, ssgd = [], []
  for n in num_workers:
    a_runs, s_runs = [], []
    for run in range(num_runs):
      run_seed = seed * 1_000_003 + run * 7919 + int(n)
      _, times, _ = completion_order(timing, int(n), num_iterations, run_seed)
      a_runs.append(num_iterations * mean / times[-1])
      s_total = synchronous_times(timing, int(n), num_iterations, run_seed + 1)[-1]
      s_runs.append(int(n) * num_iterations * mean / s_total)
    asgd.append(a_runs)
    ssgd.append(s_runs)
  asgd, ssgd = np.asarray(asgd), np.asarray(ssgd)
  return {"num_workers": np.asarray(num_workers), "asgd": asgd.mean(1), "ssgd": ssgd.mean(1),
          "asgd_std": asgd.std(1), "ssgd_std": ssgd.std(1)}
