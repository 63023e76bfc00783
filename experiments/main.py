"""The one entry point behind ``python -m experiments.<name>``.

Each experiment module is a thin call of :func:`run` with its config file,
``experiments/configs/<name>.py``; presets are chosen with
``--config=experiments/configs/<name>.py:<preset>`` and any field with
``--config.<field>=value`` (:mod:`experiments.cli`: ``--help`` lists them).

A user's mistake ends in one ``error:`` line and exit status 1, with nothing
written: a command-line mistake (:class:`experiments.cli.UsageError`), a value
the experiment or dana_jax refuses (``dana_jax.ConfigError``, which the
experiments' own :class:`experiments.validate.ConfigError` extends), missing or
malformed data (:class:`experiments.input_pipeline.DataError`), a full disk, a
file the user may not write or one in the way of a run's directory. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys

# Experiments that are not a sweep of training runs: name -> module whose ``run(config,
# workdir)`` does the work (same command line, same checks first, same error lines).
RUNNERS = {"speedup": "experiments.speedup"}

# OSErrors that are the user's environment, not a bug: one line naming the file.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_IN_THE_WAY = {errno.EEXIST, errno.EISDIR, errno.ENOTDIR}  # a file where a run's directory goes


def one_line(message) -> str:
  """The message on one line (a message is one line; a value's repr may not be)."""
  return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _fail(message) -> None:
  sys.exit(f"error: {one_line(message)}")


# XLA:CPU makes this many host devices in seconds; 100,000 take minutes before a line.
MAX_HOST_DEVICES = 4096


def _host_devices(config) -> int:
  """``config.host_devices`` if it is set and usable; a value that is not an integer ≥ 0
  is left for the validator's error line (XLA_FLAGS only ever gets a positive integer)."""
  host = config.get("host_devices", 0)
  if not isinstance(host, int) or isinstance(host, bool) or host <= 0:
    return 0
  if host > MAX_HOST_DEVICES:
    _fail(f"config.host_devices={host} is not allowed: need at most {MAX_HOST_DEVICES} "
          "(XLA:CPU host devices)")
  return host


def run(name: str, argv: list[str] | None = None) -> None:
  """Parses the command line, runs the sweep, draws its report; every user mistake is one
  ``error:`` line and exit status 1."""
  from experiments import cli
  try:
    args = cli.parse(name, sys.argv[1:] if argv is None else argv)
  except cli.UsageError as e:
    _fail(e)
  except BrokenPipeError:  # --help piped into a reader that stopped early (| head)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return
  if args is None:  # --help
    return
  logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[args.verbosity],
                      format="%(levelname)s %(name)s: %(message)s")
  host = _host_devices(args.config)
  if host:  # before jax starts (the imports below)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={host}").strip()
  args.config.lock()  # from here on, a misspelt field is an error, not a new field
  import dana_jax as dj
  from experiments import devices, input_pipeline, plot, sweep
  is_sweep = name not in RUNNERS
  try:
    if is_sweep:
      sweep.run_sweep(args.config, args.workdir, verbosity=args.verbosity)
    else:
      importlib.import_module(RUNNERS[name]).run(args.config, args.workdir)
  except (input_pipeline.DataError, dj.ConfigError) as e:  # the message says it all
    _fail(e)
  except OSError as e:
    where = repr(str(e.filename)) if e.filename else repr(str(args.workdir))
    if e.errno in _DISK_FULL:
      _fail(f"--workdir={str(args.workdir)!r}: the disk is full ({e.strerror}); finished "
            "runs are kept, and the same command resumes once there is room")
    if e.errno in _NOT_WRITABLE:
      _fail(f"--workdir={str(args.workdir)!r}: cannot write {where} ({e.strerror}); give a "
            "work directory you may write to")
    if e.errno in _IN_THE_WAY:
      _fail(f"--workdir={str(args.workdir)!r}: {where} is in the way ({e.strerror}); move it "
            "aside, or give another --workdir")
    raise
  except KeyboardInterrupt:
    _fail(f"interrupted; finished runs are kept in {args.workdir} and the same command "
          "resumes the rest" if is_sweep else "interrupted; the same command starts it again")
  if is_sweep and devices.writer():
    plot.main(args.workdir, quiet=True)
