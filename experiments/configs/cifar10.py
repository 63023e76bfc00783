"""The GA paper's CIFAR-10 experiments (docs/spec.md §4), one preset per figure.

Commands (from the repository root; a GPU or TPU is expected, CIFAR-10 in
tfds's array_record format under ~/tensorflow_datasets or --config.data_dir):

    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:main
    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:main_wrn
    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:curves
    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:delay_gap
    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:heterogeneous
    python -m experiments.cifar10 --config=experiments/configs/cifar10.py:asgd_grid

Presets:
  main          NAG-ASGD, SA, GA, DANA-SA, DANA-GA × N ∈ {4, 8, 16, 24, 32} × 5 seeds,
                plus single-worker SGD; ResNet-20 (Fig. 1, 2, 5, 6).
  main_wrn      the same with WideResNet 16-4 (λ = 5e-4).
  curves        N = 16 only; test error vs epoch is drawn from metrics.jsonl (Fig. 7).
  delay_gap     GA and DANA-GA at every N; lag and gap vs epoch (Fig. 4).
  heterogeneous main in the heterogeneous environment, Gamma shape 4 (Fig. 13).
  asgd_grid     ASGD at N = 32 over η × γ, γ negative included (Fig. 9–11).

Hyperparameters of spec §3: batch 128, η = 0.1, γ = 0.9, λ = 1e-4, warm-up
over 5 epochs from η/N, ×0.1 at epochs 80 and 120 of 160; pad-4 crop and flip.

Expected (GA paper): single-worker ResNet-20 about 8% test error; ASGD at
N = 32 best 88% accuracy at η = 0.03, γ = 0.5. Not yet run with this code:
no GPU and no CIFAR data were available where it was written.
"""

import ml_collections

from experiments.configs import common

# One line per preset for --help. Not run with this code (no GPU or CIFAR where it was
# written): the cost is counted in steps, not timed. 160 epochs of 390 steps per run.
PRESETS = {
    "main": "NAG-ASGD, SA, GA, DANA-SA, DANA-GA × N = 4 … 32 and SGD, ResNet-20 (Fig. 1, 2, 5, "
            "6); GPU, not measured: 62,400 master steps per run",
    "main_wrn": "main with WideResNet 16-4 (λ = 5e-4); GPU, not measured",
    "curves": "N = 16 only, test error against epoch (Fig. 7); GPU, not measured",
    "delay_gap": "GA and DANA-GA at every N, lag and gap (Fig. 4); GPU, not measured",
    "heterogeneous": "main with gamma shape 4 (Fig. 13); GPU, not measured",
    "asgd_grid": "ASGD at N = 32 over η × γ (Fig. 9–11); GPU, not measured",
}


def get_config(preset: str = "main", dataset: str = "cifar10"):
  if preset not in PRESETS:
    raise ValueError(f"preset={preset!r} is not allowed: choose one of {list(PRESETS)}.")
  config = ml_collections.ConfigDict()
  config.sweep = "main"
  config.dataset = dataset
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.model = "resnet"
  config.depth = 20
  config.widen_factor = 4
  config.hidden = ()
  config.augment = "crop_flip"
  config.algorithms = ("nag", "sa", "ga", "dana_sa", "dana_ga")
  config.baseline = "sgd"
  config.num_workers = (4, 8, 16, 24, 32)
  config.seeds = (0, 1, 2, 3, 4)
  config.batch_size = 128
  config.epochs = 160
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.warmup_epochs = 5.0
  config.decay_epochs = (80.0, 120.0)
  # The timing model's make_timing arguments (dana_jax.timing): the GA paper's environment.
  config.timing = ml_collections.ConfigDict({"name": "homogeneous"})
  common.add_common_fields(config)
  config.train_eval_examples = 10_000
  config.grid_learning_rates = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
  config.grid_momenta = (0.95, 0.9, 0.8, 0.5, 0.25, 0.0, -0.25, -0.5, -0.8, -0.9)
  if preset == "main_wrn":
    config.model, config.depth, config.weight_decay = "wrn", 16, 5e-4
  elif preset == "curves":
    config.num_workers = (16,)
  elif preset == "delay_gap":
    config.algorithms, config.baseline = ("ga", "dana_ga"), ""
  elif preset == "heterogeneous":
    config.timing = ml_collections.ConfigDict({"name": "heterogeneous", "shape": 4.0})
  elif preset == "asgd_grid":
    config.sweep, config.algorithms, config.num_workers = "grid", ("asgd",), (32,)
    config.baseline, config.seeds = "", (0,)
  return config
