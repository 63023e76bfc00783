"""What every config field means and what it may be (``--help`` prints it:
:mod:`experiments.help_text`).

One line per field, the allowed values spelled out where they are a fixed set
(taken from the registries, so they cannot drift from what is checked). The
checks themselves live in :mod:`experiments.validate` and dana_jax; this is
their description for a reader.
"""

from __future__ import annotations

FIELDS = {
    "sweep": "main: one run per (algorithm, N); grid: every η × γ of grid_* per (algorithm, N)",
    "dataset": "the data set",
    "data_dir": "where tfds finds the data (empty: tfds's default)",
    "idx_dir": "Fashion-MNIST's IDX files (empty: Debian's /usr/share/datasets/fashion-mnist)",
    "model": "a built-in model, or package.module:factory (factory(num_classes) returns a "
             "flax module called as module(x, train=...))",
    "hidden": "the MLP's hidden widths, e.g. 256,256",
    "depth": "ResNet / WideResNet depth; Transformer blocks",
    "window": "text: tokens (bytes) per window, one example of the stream",
    "width": "Transformer residual width (a multiple of heads)",
    "heads": "Transformer attention heads",
    "positions": "Transformer positions",
    "dropout": "Transformer dropout on attention and residual branches, in [0, 1)",
    "max_train_windows": "text: train on the first so many windows",
    "widen_factor": "WideResNet width factor",
    "augment": "training-time augmentation",
    "algorithms": "the asynchronous (and synchronous) algorithms of the sweep, e.g. ga,dana_ga",
    "baseline": "the single-worker run every N is compared with (empty: none)",
    "num_workers": "the numbers of workers N, e.g. 4,8,16",
    "seeds": "distinct integer seeds, one replica each, e.g. 0,1,2",
    "batch_size": "examples per batch (per worker)",
    "epochs": "passes over the training set (integer ≥ 1)",
    "learning_rate": "η > 0",
    "momentum": "γ in (−1, 1)",
    "weight_decay": "λ ≥ 0",
    "warmup_epochs": "linear warm-up of η over so many epochs (≥ 0)",
    "decay_epochs": "η × 0.1 at each of these epochs (increasing)",
    "timing": "the batch-time model (docs/spec.md §1): name and its arguments, one per flag, "
              "--config.timing.name=NAME, --config.timing.ARG=VALUE (listed below)",
    "environment": "links, availability, speed and placement (docs/spec.md §8), one "
                   "argument per flag, --config.environment.PART.ARG=VALUE (listed below)",
    "simulator": "dana_jax.Simulator's execution options, one per flag, "
                 "--config.simulator.NAME=VALUE (listed below)",
    "chunk_steps": "master steps per compiled chunk (empty: one epoch)",
    "eval_every_epochs": "evaluate every so many epochs (empty: every chunk)",
    "checkpoint_every_epochs": "save the whole state every so many epochs; 0: never",
    "save_final_params": "write final_params.npz next to each summary",
    "rerun_changed": "true: re-run the points whose finished runs in --workdir were made by "
                     "another configuration (deleting them); false: refuse, listing the "
                     "fields that differ",
    "algorithm_options": "options every algorithm of the sweep takes, one per flag: "
                         "--config.algorithm_options.NAME=VALUE (e.g. penalty=max for GA)",
    "options_by_algorithm": "options of one algorithm: --config.options_by_algorithm.ALG.NAME="
                            "VALUE; learning_rate and momentum override the sweep's; a value "
                            "'0.9*N' is max(1, round(0.9 N))",
    "mesh.replicas": "devices the seeds and grid cells are split over",
    "mesh.workers": "devices each block's gradients are split over (execution=blocks)",
    "host_devices": "XLA:CPU host devices (0: jax's default)",
    "distributed.initialize": "call jax.distributed.initialize first (multi-host)",
    "distributed.coordinator_address": "HOST:PORT of process 0 (empty: auto-detected)",
    "distributed.num_processes": "processes in all (0: auto-detected)",
    "distributed.process_id": "this process's id (-1: auto-detected)",
    "train_eval_examples": "training examples the train error is measured on",
    "eval_examples": "test (for text: validation) examples evaluated",
    "grid_learning_rates": "with sweep=grid: the η values",
    "grid_momenta": "with sweep=grid: the γ values",
    "image_size": "the crop fed to the model",
    "stored_size": "the size images are stored at on the device (≥ image_size)",
    "tensorboard": "also write TensorBoard event files per run (needs pip install "
                   "'dana_jax[tensorboard]')",
}


def choices() -> dict[str, list[str]]:
  """The fields whose values are a fixed set, with that set (from the registries)."""
  import dana_jax as dj
  from experiments import registry
  algorithms = sorted(dj.ALGORITHMS)
  return {"sweep": list(registry.SWEEPS), "dataset": list(registry.DATASETS),
          "model": sorted(registry.MODELS), "augment": list(registry.AUGMENTATIONS),
          "algorithms": algorithms, "baseline": algorithms,
          "positions": ["learned", "rotary"]}


# Fields of an earlier config layout: each is refused with the one that replaced it.
GONE = {
    "timing_shape": "timing.shape",
    "worker_speed_shape": "timing.worker_speed_shape",
    "timing_trace": "timing.batch_times (a .npy file, with --config.timing.name=trace)",
    "execution": "simulator.execution",
    "block_size": "simulator.block_size",
    "replica_execution": "simulator.replica_execution",
}


def gone_message(field: str) -> str:
  """The one line refusing a field of :data:`GONE`."""
  return f"config.{field} is gone: use --config.{GONE[field]}"
