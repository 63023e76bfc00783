"""The GA paper's ImageNet curves (docs/spec.md §4, Fig. 8): ResNet-50, N = 64.

Command (from the repository root; a GPU or TPU with ≥ 40 GB of memory, and
imagenet2012 prepared by tfds in array_record format — ImageNet cannot be
downloaded automatically; ``python -m experiments.imagenet`` without the data
prints tfds's manual-download instructions and the `tfds build` command):

    python -m experiments.imagenet --config.data_dir=~/tensorflow_datasets

NAG-ASGD, SA, GA, DANA-SA and DANA-GA at N = 64, plus single-worker SGD, one
seed; test error vs epoch in ``test_error_vs_epoch.png`` (drawn from
``metrics.jsonl``, evaluated every epoch on the 50,000 validation images).
spec §3: batch 128 per gradient, η = 0.1, γ = 0.9, λ = 1e-4, warm-up from η/N
over 5 epochs, ×0.1 at epochs 30, 60 and 80 of 90.

Data path: the training set stays on the host. Each chunk's batches are
decoded and resized (shorter side 256, central 256 × 256) by host threads
while the previous chunk runs; the random-resized crop to 224 and the flip run
in JAX with the run's keys; evaluation is the central 224 crop.

Memory (``Simulator.memory_estimate``): ResNet-50 has 25.6 M parameters, so
N = 64 read copies take 6.5 GB, DANA's 64 momenta 6.5 GB more.
``simulator.execution="blocks"`` vmaps ``block_size`` gradients at once; with K = 4
that is 512 images of activations.

Expected (GA paper, Fig. 8): DANA-GA and GA close to the single-worker curve,
NAG-ASGD well above it. Not yet run with this code: no GPU and no ImageNet
where it was written. Runtime estimate, not a measurement: 90 epochs are
115 M images per run; at ~2,500 images/s (ResNet-50 training in float32 on
one H100-class GPU) about 13 hours per run, 6 runs.

Presets (``--config=experiments/configs/imagenet.py:PRESET``):
  curves (default): as above.
  short: the same sweep for 2 epochs on 10,000 validation images, to check a
    setup end to end before the long run.
"""

import ml_collections

from experiments.configs import common

# One line per preset for --help (not run with this code: estimates, as the docstring says).
PRESETS = {
    "curves": "NAG-ASGD, SA, GA, DANA-SA, DANA-GA at N = 64 and SGD, ResNet-50, test error "
              "against epoch (Fig. 8); GPU, about 13 h per run (an estimate, not measured)",
    "short": "the same sweep for 2 epochs on 10,000 validation images, to check a setup",
}


def get_config(preset: str = "curves"):
  if preset not in PRESETS:
    raise ValueError(f"preset={preset!r} is not allowed: choose one of {list(PRESETS)}.")
  config = ml_collections.ConfigDict()
  config.sweep = "main"
  config.dataset = "imagenet2012"
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.model = "resnet50"
  config.augment = "random_resized_crop"
  config.stored_size = 256
  config.image_size = 224
  config.algorithms = ("nag", "sa", "ga", "dana_sa", "dana_ga")
  config.baseline = "sgd"
  config.num_workers = (64,)
  config.seeds = (0,)
  config.batch_size = 128
  config.epochs = 90
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.warmup_epochs = 5.0
  config.decay_epochs = (30.0, 60.0, 80.0)
  # The timing model's make_timing arguments (dana_jax.timing): the GA paper's environment.
  config.timing = ml_collections.ConfigDict({"name": "homogeneous"})
  common.add_common_fields(config)
  config.simulator.block_size = 4
  # Host data: chunks of at most 1 GiB of inputs (engine default) unless chunk_steps is set.
  config.eval_every_epochs = 1.0
  config.eval_examples = ml_collections.FieldReference(None, field_type=int)
  config.train_eval_examples = 10_000
  if preset == "short":
    config.epochs, config.warmup_epochs, config.decay_epochs = 2, 0.5, (1.0,)
    config.eval_examples = 10_000
  return config
