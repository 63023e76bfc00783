"""The GA paper's main comparison on Fashion-MNIST, sized for a 2-core CPU.

Command (from the repository root; needs the IDX files of Debian's
``dataset-fashion-mnist`` package in /usr/share/datasets/fashion-mnist, or
tfds's own ``fashion_mnist`` where the network allows):

    python -m experiments.fashion_mnist --workdir runs/fashion_mnist

NAG-ASGD, SA, GA, DANA-SA and DANA-GA at N ∈ {4, 8, 16, 32}, plus single-worker
SGD, 3 seeds each on the engine's replica axis; MLP 784-256-256-10, batch 128,
η = 0.1, γ = 0.9, λ = 1e-4 (spec §3, no retuning), warm-up over 1 epoch and
×0.1 at epochs 5 and 7 of 8 (the paper's 5/80/120 of 160, shortened),
homogeneous Gamma(100, 1.28) timing.

Expected: see results/fashion_mnist/results.md (committed, with the runtime);
about 11 minutes on 2 CPU cores (measured: 11 min 18 s, 2026-11-23).

Presets (``--config=experiments/configs/fashion_mnist.py:PRESET``):
  main (default);
  ga_no_momentum: GA with γ = 0 at every N, to compare with main's GA at
    γ = 0.9 ("with GA, momentum helps even with many workers"; about 2 min):
    python -m experiments.fashion_mnist \
      --config=experiments/configs/fashion_mnist.py:ga_no_momentum \
      --workdir runs/fashion_mnist_ga_no_momentum
  cnn: the small CNN instead of the MLP (slower on CPU).
  modern / modern_heterogeneous: GA, DANA-GA, delay-adaptive, Ringmaster,
    m-sync, Rennala, asynchronous local SGD and SSGD at N ∈ {4, 8, 16, 32},
    3 seeds, in the homogeneous environment / with persistent slow workers
    (options: experiments.configs.common.set_modern). modern_heterogeneous
    measured 2287 s wall on 2 CPU cores (results/fashion_mnist_modern_heterogeneous);
    modern not run on Fashion-MNIST (on digits: results/digits_modern).
  bases_adam, bases_adamw, bases_muon: SA and GA over Adam, AdamW or Muon
    (algorithm_options.base) at N ∈ {4, 16, 32} against the same base at
    N = 1 (baseline ``sa`` at N = 1 is the base itself); η 1e-3 (Adam,
    AdamW) or 0.02 (Muon), b1 = γ = 0.9, λ = 1e-4 (coupled for Adam,
    decoupled for AdamW and Muon). See results/fashion_mnist_bases_*.
    Measured on 2 CPU cores: bases_adam 627 s, bases_adamw 598 s (both
    partly alongside tests), bases_muon 2068 s (its first 7 minutes alongside
    tests).
"""

import ml_collections

from experiments.configs import common

ADAPTIVE_BASES = {"bases_adam": "adam", "bases_adamw": "adamw", "bases_muon": "muon"}

# One line per preset for --help: what, and its runtime as measured on 2 CPU cores (the
# runs: counted from the config). Wall times with the install where the README says so.
PRESETS = {
    "main": "NAG-ASGD, SA, GA, DANA-SA, DANA-GA at N = 4 … 32 and SGD; CPU, measured "
            "1294 s with the install (2026-12-02, results/README.md)",
    "ga_no_momentum": "GA at γ = 0; CPU, measured 108 s of simulation "
                      "(results/fashion_mnist_ga_no_momentum)",
    "cnn": "main with the small CNN; not run: about 1 h on 2 CPU cores, estimated from "
           "docs/benchmarks.md's ~15 ms per CNN master step",
    "modern": "GA, DANA-GA and the methods of docs/spec.md §6, homogeneous; not run: about "
              "40 min on 2 CPU cores, as its heterogeneous twin",
    "modern_heterogeneous": "the same with persistent slow workers; CPU, measured 2287 s "
                            "(results/fashion_mnist_modern_heterogeneous)",
    "bases_adam": "SA and GA over Adam against Adam at N = 1; CPU, measured 627 s",
    "bases_adamw": "SA and GA over AdamW; CPU, measured 598 s",
    "bases_muon": "SA and GA over Muon; CPU, measured 2068 s",
    "links": "NAG-ASGD, GA, DANA-GA, SSGD and async local SGD (H = 4) at N = 16, one seed, "
             "links of --config.environment.links.bandwidth (docs/spec.md §8.1; "
             "results/fashion_mnist_links_*)",
    "failures": "the same methods at N = 16, one seed, workers failing with "
                "--config.environment.availability.mtbf, MTTR 1280 (docs/spec.md §8.2; "
                "results/fashion_mnist_failures_*)",
    "real_stragglers": "the GA paper's five methods at N = 10, one seed, timing of "
                       "--config.timing (an Alibaba PAI job or a gamma environment; "
                       "docs/spec.md §8.3; results/fashion_mnist_real_*)",
    "data_per_worker": "ASGD, GA, DANA-GA and Ringmaster at N = 16, one seed, heterogeneous "
                       "persistent speeds, Dirichlet data of "
                       "--config.environment.placement.alpha (docs/spec.md §8.4; "
                       "results/fashion_mnist_dirichlet_*)",
}


def get_config(preset: str = "main"):
  config = ml_collections.ConfigDict()
  config.sweep = "main"
  config.dataset = "fashion_mnist"
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.idx_dir = ml_collections.FieldReference(None, field_type=str)
  config.model = "mlp"
  config.hidden = (256, 256)
  config.augment = "none"
  config.algorithms = ("nag", "sa", "ga", "dana_sa", "dana_ga")
  config.baseline = "sgd"
  config.num_workers = (4, 8, 16, 32)
  config.seeds = (0, 1, 2)
  config.batch_size = 128
  config.epochs = 8
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.warmup_epochs = 1.0
  config.decay_epochs = (5.0, 7.0)
  # The timing model's make_timing arguments (dana_jax.timing): the GA paper's environment.
  config.timing = ml_collections.ConfigDict({"name": "homogeneous"})
  common.add_common_fields(config)
  # A kill loses at most about an epoch of each running point. The price: a checkpoint per
  # epoch cost +30% at N = 32 (DANA-GA, 3 seeds: 34.5 vs 26.5 s, measured), where the
  # state holds N copies of the parameters; --config.checkpoint_every_epochs=0 turns it off.
  config.checkpoint_every_epochs = 1.0
  config.train_eval_examples = 10_000
  if preset == "cnn":
    config.model = "cnn"
  elif preset == "ga_no_momentum":
    config.algorithms, config.baseline, config.momentum = ("ga",), "", 0.0
  elif preset in ("modern", "modern_heterogeneous"):
    common.set_modern(config, heterogeneous=preset == "modern_heterogeneous")
  elif preset in ADAPTIVE_BASES:
    # SA and GA over an adaptive base against the same base at N = 1 (SA with one
    # worker is its base: τ = 0). η: Adam's and AdamW's usual 1e-3, Muon's 0.02.
    config.algorithm_options = ml_collections.ConfigDict({"base": ADAPTIVE_BASES[preset]})
    config.algorithms, config.baseline = ("sa", "ga"), "sa"
    config.num_workers = (4, 16, 32)
    config.learning_rate = 0.02 if preset == "bases_muon" else 1e-3
  elif preset == "links":
    # What communication changes (docs/spec.md §8.1): one message is P ≈ 269k float32
    # values ≈ 1.08 MB, so a bandwidth of 8.4e3 bytes per time unit makes one transfer
    # as long as one mean batch time (128); set it with --config.environment.links.*.
    common.set_modern(config, heterogeneous=False)
    config.algorithms = ("nag", "ga", "dana_ga", "ssgd", "async_local_sgd")
    config.num_workers, config.seeds = (16,), (0,)
  elif preset == "failures":
    common.set_modern(config, heterogeneous=False)
    config.algorithms = ("nag", "ga", "dana_ga", "ssgd", "async_local_sgd")
    config.num_workers, config.seeds = (16,), (0,)
    config.environment.availability = ml_collections.ConfigDict(
        {"name": "up_down", "mtbf": float("inf"), "mttr": 1280.0})
  elif preset == "real_stragglers":
    config.num_workers, config.seeds = (10,), (0,)
  elif preset == "data_per_worker":
    common.set_modern(config, heterogeneous=True)
    config.algorithms = ("asgd", "ga", "dana_ga", "ringmaster")
    config.num_workers, config.seeds = (16,), (0,)
    config.environment.placement = ml_collections.ConfigDict(
        {"name": "dirichlet", "alpha": float("inf")})
  elif preset != "main":
    raise ValueError(f"preset={preset!r} is not allowed: choose one of {list(PRESETS)}.")
  return config
