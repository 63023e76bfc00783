"""The speedup model and the timing densities of the GA paper (Figures 12 and 3).

Command (from the repository root):

    python -m experiments.speedup --workdir=runs/speedup

Monte Carlo over the homogeneous timing model (communication not modelled):
the speedup of N workers over one for ASGD and SSGD; and the homogeneous
(shape 100) and heterogeneous (shape 4) gamma densities with P(X > 1.25·mean)
shaded. Runtime: see results/README.md (speedup/).
Change anything with ``--config.key=value``, e.g. ``--config.runs=2``.
"""

import ml_collections

# --help's description of each field (the sweep fields': experiments/fields.py).
FIELDS = {
    "runs": "Monte-Carlo runs per N (an integer ≥ 1)",
    "iterations": "iterations (gradients) per run (an integer ≥ 1)",
    "num_workers": "the numbers of workers N, e.g. 1,4,16 (distinct integers ≥ 1)",
}
WORKDIR_HELP = "speedup.json, speedup.md, densities.json and the figures (overwritten)"


def get_config():
  config = ml_collections.ConfigDict()
  config.runs = 20
  config.iterations = 100_000
  config.num_workers = (1, 2, 4, 8, 16, 32, 64, 128)
  return config
