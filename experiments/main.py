"""The one entry point behind ``python -m experiments.<name>``.

Each experiment module is a thin call of :func:`run` with its config file,
``experiments/configs/<name>.py``; presets are chosen with
``--config=experiments/configs/<name>.py:<preset>`` and any field with
``--config.<field>=value``.
"""

from __future__ import annotations

import os
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

CONFIGS = pathlib.Path(__file__).parent / "configs"


def run(name: str) -> None:
  """Defines the flags for experiment ``name``, runs its sweep and draws its figures."""
  config = config_flags.DEFINE_config_file("config", default=str(CONFIGS / f"{name}.py"),
                                           lock_config=True)
  workdir = flags.DEFINE_string("workdir", f"runs/{name}", "where results are written")

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    host = config.value.get("host_devices", 0)
    if host:  # before jax starts (the imports below)
      os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                 f" --xla_force_host_platform_device_count={host}").strip()
    from experiments import input_pipeline, plot, train, validate

    try:
      train.run_sweep(config.value, workdir.value)
    except (input_pipeline.DataError, validate.ConfigError) as e:  # the message says it all
      sys.exit(f"error: {e}")
    if train.writer():
      plot.main(workdir.value)

  app.run(main)
