"""What every config field means and what it may be: the ``--help`` of an experiment.

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


def timing_help() -> list[str]:
  """``--help``'s lines for ``config.timing``: every timing model of dana_jax and the
  arguments it takes, from the model itself (``dana_jax.timing.timing_arguments``)."""
  from dana_jax import timing
  lines = []
  for name in sorted(timing.TIMING_MODELS):
    lines.append(f"  {name}:")
    lines += [f"    {key}: {what}" for key, what in timing.timing_arguments(name).items()]
  return lines


def docstring_args(obj) -> dict[str, str]:
  """The ``Args:`` entries of ``obj``'s docstring, ``{name: text}`` on one line each (an
  entry naming several, ``a, b: ...``, gives each the text)."""
  import inspect
  import re
  doc = inspect.getdoc(obj) or ""
  section = doc.partition("Args:\n")[2].partition("\n\n")[0]
  out, names = {}, []
  for line in section.splitlines():
    entry = re.match(r"^  (\w+(?:, \w+)*): (.*)$", line)
    if entry:
      names = entry.group(1).split(", ")
      for name in names:
        out[name] = entry.group(2)
    elif line.startswith("    ") and names:
      for name in names:
        out[name] += " " + line.strip()
  return out


def simulator_help() -> list[str]:
  """``--help``'s lines for ``config.simulator``: the keywords of ``dana_jax.Simulator`` a
  sweep does not set itself, each with its docstring's description."""
  import dana_jax as dj
  from experiments import builders
  described = docstring_args(dj.Simulator)
  return [f"  {key}: {described.get(key, '(see dana_jax.Simulator)')}"
          for key in builders.simulator_keywords()]


def _runs(module, preset) -> str:
  """"S simulations, D runs × K seeds" of a preset (its sweep points, counted)."""
  from experiments import sweep
  try:
    config = module.get_config(preset)
    points = sweep.sweep_points(config)
  except Exception:  # noqa: BLE001 - a preset the user has still to complete
    return "runs not counted"
  runs = sum(len(p["cells"]) for p in points)
  return f"{len(points)} simulations, {runs} runs × {len(config.seeds)} seeds"


def help_text(name: str, spec: str | None = None) -> str:
  """``--help``: usage, the config's summary, its presets (what, runs, runtime), the
  flags, and every field with its default and allowed values."""
  path_text, _, preset = (spec or "").partition(":")
  from experiments import cli
  module = cli.config_module(name, path_text or None)
  doc = (module.__doc__ or "").strip().split("\n\n")[0]
  presets = cli._presets(module, spec)
  config, preset = cli.load_config(name, spec)  # a preset that does not exist: the error line
  lines = ["usage: " + cli.usage(name), "", doc, ""]
  if presets:
    default = next(iter(presets))
    lines.append(f"Presets (--config=experiments/configs/{name}.py:PRESET):")
    for key, what in presets.items():
      mark = " (default)" if key == default else ""
      lines.append(f"  {key}{mark}: {what}; {_runs(module, key)}")
    lines.append("")
  lines += [
      "Flags:",
      f"  --workdir=DIR       where results go (default runs/{name}); " + getattr(
          module, "WORKDIR_HELP", "one sweep at a time; finished runs of the same "
          "configuration are skipped, an interrupted one resumes, runs of another "
          "configuration are refused (see --config.rerun_changed)"),
      "  --verbosity=LEVEL   library logging: 0 warnings (default), 1 info, 2 debug",
      "  --config.FIELD=VALUE  set a field below: tuples as 4,8 or (4, 8), empty for none",
      "  --help              this text", "",
      "Config fields (" + (f"preset {preset}" if preset else "defaults") + "; allowed values):"]
  allowed = choices()
  described = {**FIELDS, **getattr(module, "FIELDS", {})}  # a config's own fields
  for path in cli.field_paths(config):
    node, key = config, path
    for part in path.split(".")[:-1]:
      node, key = node[part], path.split(".")[-1]
    value = node[key]
    value = value.to_dict() if hasattr(value, "to_dict") else value
    what = described.get(path, "")
    choice = allowed.get(path)
    lines.append(f"  {path} = {value!r}" + (f"  — {what}" if what else "") +
                 (f" [{', '.join(choice)}]" if choice else ""))
  if "timing" in config:
    lines += ["", "Timing models (--config.timing.name=NAME, then --config.timing.ARG=VALUE; "
              "docs/spec.md §1):", *timing_help()]
  if "simulator" in config:
    lines += ["", "Simulator options (--config.simulator.NAME=VALUE, as dana_jax.Simulator "
              "takes them):", *simulator_help()]
  import dana_jax as dj
  names = [a for a in dict.fromkeys([*config.get("algorithms", ()),
                                     config.get("baseline") or ""]) if a in dj.ALGORITHMS]
  if not names:  # an experiment without algorithms (the speedup model)
    return "\n".join(lines)
  lines += ["", "Algorithm options (--config.algorithm_options.NAME=VALUE for all, "
            "--config.options_by_algorithm.ALG.NAME=VALUE for one; semantics: docs/spec.md):"]
  lines += [f"  {a}: {', '.join(dj.get_algorithm(a).options()) or '(none)'}" for a in names]
  return "\n".join(lines)
