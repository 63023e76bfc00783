"""Language modelling: the GA paper's WikiText-103 comparison, and asynchronous local SGD on text.

Commands (from the repository root):

    python -m experiments.wikitext103 --config.data_dir=/path/to/wikitext-103
    python -m experiments.wikitext103 --config=experiments/configs/wikitext103.py:local_sgd \
      --config.data_dir=/path/to/wikitext-103
    python -m experiments.wikitext103 --config=experiments/configs/wikitext103.py:offline
    python -m experiments.wikitext103 --config=experiments/configs/wikitext103.py:offline_adamw

A decoder-only Transformer (``dana_jax.transformer.DecoderLM``: pre-LayerNorm,
causal self-attention, learned or rotary positions) on byte-level tokens,
trained with next-token cross-entropy on non-overlapping windows of
``window`` bytes (each epoch a fresh permutation of the windows, docs/spec.md §1).
``test/…`` metrics are measured on the corpus's *validation* split (the first
``eval_examples`` windows): loss in nats per byte, ``bits_per_token`` (bits
per byte), and ``error`` (next bytes not predicted). Perplexity per byte is
exp(loss).

WikiText-103 (Merity et al. 2016) is read from the standard release files in
``config.data_dir`` (wiki.{train,valid,test}.tokens or .raw; without them the
experiment says which files and where they come from). The ``offline`` presets
use FOLDOC (Debian's ``dict-foldoc``; ``experiments/text.py`` says why it is a
fair stand-in) sized for a 2-core CPU.
"""

import ml_collections

from experiments.configs import common

PRESETS = {
    "paper": "NAG-ASGD, SA, GA, DANA-SA, DANA-GA at N = 4 … 32 and SGD on WikiText-103, "
             "6-layer width-256 Transformer (4.9 M parameters), windows of 256 bytes; GPU, "
             "not measured: about 132k master steps per run (541 MB of bytes, 2 epochs)",
    "local_sgd": "asynchronous local SGD (H = 8 AdamW steps, delayed-Nesterov outer), SA "
                 "and GA over AdamW at N = 4 … 32, AdamW at N = 1, on WikiText-103; GPU, not "
                 "measured: about 132k master steps per run (16.5k for local SGD)",
    "offline": "GA, DANA-GA, NAG-ASGD, SA and asynchronous local SGD at N = 4, 8, 16 and SGD "
               "on FOLDOC, 2 seeds, a 2-layer width-64 model; CPU, see results/README.md",
    "offline_adamw": "SA and GA over AdamW at N = 4, 8, 16 against AdamW at N = 1 on FOLDOC; "
                     "CPU, see results/README.md",
    "offline_links": "NAG-ASGD, GA, DANA-GA, SSGD and asynchronous local SGD (H = 4) at N = 16 "
                     "on FOLDOC, one seed, links of --config.environment.links.bandwidth "
                     "(docs/spec.md §8.1; results/environment_comparisons.md)",
}


def get_config(preset: str = "paper"):
  if preset not in PRESETS:
    raise ValueError(f"preset={preset!r} is not allowed: choose one of {list(PRESETS)}.")
  config = ml_collections.ConfigDict()
  config.sweep = "main"
  config.dataset = "wikitext103"
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.model = "transformer"
  config.window = 256
  config.width = 256
  config.depth = 6
  config.heads = 4
  config.positions = "learned"
  config.dropout = 0.0
  config.algorithms = ("nag", "sa", "ga", "dana_sa", "dana_ga")
  config.baseline = "sgd"
  config.num_workers = (4, 8, 16, 32)
  config.seeds = (0, 1, 2)
  config.batch_size = 32
  config.epochs = 2
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 0.0
  config.warmup_epochs = 0.1
  config.decay_epochs = (1.5,)
  # The timing model's make_timing arguments (dana_jax.timing): the GA paper's environment.
  config.timing = ml_collections.ConfigDict({"name": "homogeneous"})
  common.add_common_fields(config)
  config.checkpoint_every_epochs = 0.25  # long runs: resume within a run
  config.save_final_params = False
  config.train_eval_examples = 2048
  config.eval_examples = 2048
  if preset == "local_sgd":
    _set_local_sgd(config)
  elif preset in ("offline", "offline_adamw", "offline_links"):
    _set_offline(config, preset)
  return config


def _set_local_sgd(config):
  """SA and GA over AdamW against asynchronous local SGD (8 AdamW steps per job)."""
  adamw = {"base": "adamw", "learning_rate": 1e-3}
  config.algorithms, config.baseline = ("sa", "ga", "async_local_sgd"), "sa"
  config.options_by_algorithm = ml_collections.ConfigDict({
      "sa": adamw, "ga": adamw,
      "async_local_sgd": {"local_steps": 8, "inner": "adamw", "inner_learning_rate": 1e-3,
                          "outer": "delayed_nesterov", "learning_rate": 0.7,
                          "momentum": 0.9},
  })


def _set_offline(config, preset):
  """The FOLDOC presets: a small Transformer and one epoch per run, for 2 CPU cores."""
  config.dataset = "foldoc"
  config.window, config.width, config.depth, config.heads = 32, 64, 2, 4
  config.num_workers = (4, 8, 16)
  config.seeds = (0, 1)
  config.batch_size = 16
  config.epochs = 1
  config.warmup_epochs, config.decay_epochs = 0.1, (0.75,)
  config.train_eval_examples = config.eval_examples = 1024
  # One epoch per run: a checkpoint at the first evaluation after every quarter of it.
  config.checkpoint_every_epochs = 0.25
  config.max_train_windows = 20_000  # of FOLDOC's 143k: the CPU budget
  config.chunk_steps = 125  # an evaluation every 125 master steps (10 per epoch)
  if preset in ("offline", "offline_links"):
    config.algorithms = ("ga", "dana_ga", "nag", "sa", "async_local_sgd")
    config.learning_rate = 0.05
    config.options_by_algorithm = ml_collections.ConfigDict({
        "async_local_sgd": {"local_steps": 4, "inner": "adamw", "inner_learning_rate": 1e-3,
                            "outer": "delayed_nesterov", "learning_rate": 0.7,
                            "momentum": 0.9},
    })
    if preset == "offline_links":
      # The model has 134,656 parameters: a float32 message of 0.54 MB takes one mean batch
      # time (128) at a bandwidth of 4.2e3 bytes per time unit; set it on the command line.
      config.algorithms = ("nag", "ga", "dana_ga", "ssgd", "async_local_sgd")
      config.num_workers, config.seeds = (16,), (0,)
  else:
    config.algorithms, config.baseline = ("sa", "ga"), "sa"
    config.learning_rate = 1e-3
    config.algorithm_options = ml_collections.ConfigDict({"base": "adamw"})
