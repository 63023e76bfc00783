"""The one entry point behind ``python -m experiments.<name>``.

Each experiment module is a thin call of :func:`run` with its config file,
``experiments/configs/<name>.py``; presets are chosen with
``--config=experiments/configs/<name>.py:<preset>`` and any field with
``--config.<field>=value`` (:mod:`experiments.cli`: ``--help`` lists them).
"""

from __future__ import annotations

import errno
import logging
import os
import sys


def _fail(message: str) -> None:
  sys.exit(f"error: {message}")


def run(name: str, argv: list[str] | None = None) -> None:
  """Parses the command line, runs the sweep, draws its report; every user mistake is one
  ``error:`` line and exit status 1."""
  from experiments import cli
  try:
    args = cli.parse(name, sys.argv[1:] if argv is None else argv)
  except cli.UsageError as e:
    _fail(str(e))
  if args is None:  # --help
    return
  logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[args.verbosity],
                      format="%(levelname)s %(name)s: %(message)s")
  host = args.config.get("host_devices", 0)
  if host:  # before jax starts (the imports below)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={host}").strip()
  args.config.lock()  # from here on, a misspelt field is an error, not a new field
  from experiments import input_pipeline, plot, train, validate
  try:
    train.run_sweep(args.config, args.workdir, verbosity=args.verbosity)
  except (input_pipeline.DataError, validate.ConfigError) as e:  # the message says it all
    _fail(str(e))
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise
    _fail(f"--workdir={str(args.workdir)!r}: the disk is full ({e.strerror}); finished runs "
          "are kept, and the same command resumes once there is room")
  except KeyboardInterrupt:
    _fail(f"interrupted; finished runs are kept in {args.workdir} and the same command "
          "resumes the rest")
  if train.writer():
    plot.main(args.workdir, quiet=True)
