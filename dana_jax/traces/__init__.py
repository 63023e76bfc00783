"""Real batch-time traces shipped with dana_jax (docs/spec.md §8.3).

``alibaba_pai/``: the Alibaba PAI mini-batch times of four real 10-worker training jobs
(CC BY 4.0; ``alibaba_pai/ATTRIBUTION.md``), read by :func:`alibaba_job`.
"""

from __future__ import annotations

import csv
import functools
import pathlib

import numpy as np

ALIBABA_DIR = pathlib.Path(__file__).parent / "alibaba_pai"
ALIBABA_JOBS = ("job_1", "job_2", "job_3", "job_4")


@functools.cache
def alibaba_job(job: str) -> tuple[np.ndarray, ...]:
  """Each of the job's 10 workers' recorded samples, in iteration order, as normalised in
  the file (0–1000): a tuple of 10 float64 arrays (their lengths differ by a few)."""
  per_worker: dict[int, list[tuple[int, float]]] = {}
  with open(ALIBABA_DIR / f"{job}_norm.csv", newline="") as f:
    for row in csv.DictReader(f):
      per_worker.setdefault(int(row["worker"]), []).append(
          (int(row["time"]), float(row["batch_time_norm"])))
  return tuple(np.asarray([v for _, v in sorted(per_worker[w])], np.float64)
               for w in sorted(per_worker))
