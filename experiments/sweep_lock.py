"""One sweep per work directory: ``<workdir>/.sweep.lock``, held with ``flock``.

The lock file names its holder (pid, host, start time); the kernel releases
a ``flock`` when its holder dies, so a killed sweep's lock is taken over by
the next sweep. A second sweep refuses with one line (a :class:`ConfigError`)
naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import time

import numpy as np

from experiments.runfiles import read_json
from experiments.validate import ConfigError

LOCK = ".sweep.lock"


def _alive(pid: int) -> bool:
  """Whether a process ``pid`` runs on this host (one of another user counts)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def _holder(info) -> str:
  """The lock's holder in words, from the lock file's JSON."""
  if not isinstance(info, dict):
    return "a sweep that has not yet written its pid"
  return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}")


@contextlib.contextmanager
def sweep_lock(workdir: pathlib.Path):
  """Holds ``<workdir>/.sweep.lock`` for the body: one sweep per work directory.

  The file records the holder's pid, host and start time. It is locked with
  ``flock``; a second sweep (on this host, or on another through a file
  system with working locks) refuses with one line naming the holder. A lock
  whose holder was killed is free (the kernel drops a dead process's flock) and
  is taken over. Where ``flock`` is not supported, a lock naming a pid that is
  not alive on this host is taken over and one naming a live pid is refused.
  """
  import fcntl
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK
  host = socket.gethostname()
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      locked = True
    except BlockingIOError:
      info, _ = read_json(path)
      raise ConfigError(
          f"--workdir={str(workdir)!r} is in use by another sweep ({_holder(info)}): wait "
          "for it to end, or give another --workdir") from None
    except OSError:  # no flock here (some network file systems): the pid decides
      locked = False
    info, _ = read_json(path)
    if isinstance(info, dict) and info.get("pid") not in (None, os.getpid()):
      same_host = info.get("host") == host
      if not locked and (not same_host or _alive(int(info["pid"]))):
        raise ConfigError(
            f"--workdir={str(workdir)!r} is in use by another sweep ({_holder(info)}): wait "
            f"for it to end, or, if it is no longer running, delete {path}")
      print(f"note: took over the lock of an ended sweep ({_holder(info)})", flush=True)
    mine = {"pid": os.getpid(), "host": host,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "token": int.from_bytes(os.urandom(4), "little") >> 1}  # < 2**31: an int32
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(mine).encode(), 0)
    os.fsync(fd)
    try:
      yield mine
    finally:
      with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
  finally:
    os.close(fd)  # releases the flock


def shared_by_processes(workdir: pathlib.Path, held: dict | None) -> bool:
  """Whether every process of a multi-process sweep sees the lock that process 0 holds
  (``held``, its :func:`sweep_lock`): the work directory is on a disk they share, as
  checkpoints need (each process writes its part). Collective: every process calls it."""
  import jax
  if jax.process_count() == 1:
    return True
  from jax.experimental import multihost_utils
  token = int(multihost_utils.broadcast_one_to_all(
      np.asarray((held or {}).get("token", -1), np.int32)))
  info, _ = read_json(pathlib.Path(workdir) / LOCK)
  seen = isinstance(info, dict) and info.get("token") == token
  return bool(np.all(multihost_utils.process_allgather(np.asarray(seen))))


__all__ = ["LOCK", "shared_by_processes", "sweep_lock"]
