"""Every algorithm vs the number of workers on scikit-learn's 8×8 digits.

Command (from the repository root):

    python -m experiments.digits --workdir runs/digits

A small real simulation that needs no download: a 64-unit MLP, batch 32,
η = 0.1, γ = 0.9, λ = 1e-4, the GA paper's warm-up and step decays scaled to
20 epochs, N ∈ {4, 16, 32}, 3 seeds per point on the engine's replica axis,
plus single-worker SGD. Writes one directory per (algorithm, N) and
``results.md`` and ``test_error_vs_workers.png`` at the top.

Runtime: 106 s on 2 CPU cores (measured 2026-12-02; results/digits/results.md).

Presets (``--config=experiments/configs/digits.py:<preset>``):

* ``main`` (default): the GA paper's rules, as above.
* ``modern``: GA, DANA-GA, delay-adaptive, Ringmaster, m-sync, Rennala,
  asynchronous local SGD and SSGD at N ∈ {4, 8, 16, 32}, 3 seeds, the
  homogeneous environment; options and hyperparameters in
  :func:`experiments.configs.common.set_modern`.
* ``modern_heterogeneous``: the same in a heterogeneous environment with
  persistent slow workers.

Both modern presets: 33 simulations, measured 299 s and 300 s wall on 2 CPU
cores (2026-12-01, results/digits_modern*).
Change anything with ``--config.key=value``, e.g. ``--config.num_workers=4,8``.
"""

import ml_collections

from experiments.configs import common

# One line per preset for --help: what, and its runtime as measured (the runs: counted
# from the config).
PRESETS = {
    "main": "the GA paper's nine rules at N = 4, 16, 32 and single-worker SGD; CPU, "
            "measured 106 s on 2 cores (2026-12-02, results/digits)",
    "modern": "GA, DANA-GA and the methods of docs/spec.md §6 at N = 4 … 32, homogeneous; CPU, "
              "measured 299 s on 2 cores (results/digits_modern)",
    "modern_heterogeneous": "the same with persistent slow workers; CPU, measured 300 s on "
                            "2 cores (results/digits_modern_heterogeneous)",
}


def get_config(preset: str = "main"):
  config = ml_collections.ConfigDict()
  config.sweep = "main"
  config.dataset = "digits"
  config.model = "mlp"
  config.hidden = (64,)
  config.algorithms = ("nag", "sa", "ga", "dana", "dana_sa", "dana_ga", "asgd", "dc_asgd",
                       "ssgd")
  config.baseline = "sgd"
  config.num_workers = (4, 16, 32)
  config.seeds = (0, 1, 2)
  config.batch_size = 32
  config.epochs = 20
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.warmup_epochs = 2.0
  config.decay_epochs = (10.0, 15.0)
  # The timing model's make_timing arguments (dana_jax.timing): the GA paper's environment.
  config.timing = ml_collections.ConfigDict({"name": "homogeneous"})
  common.add_common_fields(config)
  # A kill loses at most about an epoch of each running point (checkpoints do not change
  # the numbers: a resumed run equals an uninterrupted one, tests/test_checkpoint.py).
  config.checkpoint_every_epochs = 1.0
  if preset in ("modern", "modern_heterogeneous"):
    common.set_modern(config, heterogeneous=preset == "modern_heterogeneous")
  elif preset != "main":
    raise ValueError(f"preset={preset!r} is not allowed: choose one of {list(PRESETS)}.")
  return config
