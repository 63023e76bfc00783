"""A sweep's work directory: what each run directory ran, one sweep at a time, damaged files.

Three guarantees, each one line when it refuses (a :class:`ConfigError`):

* **Fingerprints.** Every run directory holds ``fingerprint.json``: the
  fields that determine its numbers — the run's own config (its algorithm, N,
  η, γ and resolved options; every other field but :data:`RUN_INDEPENDENT`),
  the identity of its data (:func:`data_identity`) and the dana_jax version.
  A sweep that finds a run of its own with another fingerprint refuses,
  listing the fields that differ (old → new), unless
  ``config.rerun_changed`` says to re-run those points. A run written before
  fingerprints existed is compared by its ``config.json``.
* **One sweep per work directory** (:func:`sweep_lock`): ``.sweep.lock``
  names the holder (pid, host, start time) and is held with ``flock``, which
  the kernel releases when the holder dies, so a killed sweep's lock is taken
  over by the next one.
* **Damaged files** (:func:`survey`): a run file that cannot be read is set
  aside as ``<file>.damaged`` and its point re-run (a damaged checkpoint is
  dropped, :mod:`dana_jax.checkpoint`), or, where the run cannot be told
  apart from another configuration's, the sweep refuses naming the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import socket
import time

import numpy as np

from experiments.validate import ConfigError

# Fields that do not change what a run computes: a run (or its checkpoint) may be resumed
# or reused with other values of them.
RUN_INDEPENDENT = ("mesh", "host_devices", "distributed", "checkpoint_every_epochs",
                   "save_final_params", "tensorboard", "rerun_changed")
# Fields that name the sweep's set of runs; a run's own values (its cell and resolved
# options) stand for them in its fingerprint, so adding an N leaves the others' alone.
SWEEP_SETS = ("algorithms", "baseline", "num_workers", "learning_rate", "momentum",
              "algorithm_options", "options_by_algorithm", "grid_learning_rates",
              "grid_momenta")
FINGERPRINT = "fingerprint.json"
LOCK = ".sweep.lock"
_SAMPLE_BYTES = 1 << 20  # per array: the digest reads evenly spaced rows of about this much


def _plain(value):
  """``value`` as JSON gives it back (tuples as lists, numpy scalars as numbers)."""
  return json.loads(json.dumps(value, default=lambda x: x.tolist() if hasattr(x, "tolist")
                               else list(x)))


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):  # an empty one ({} options) adds no field
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def _array_digest(x, h) -> None:
  """Shape, dtype and evenly spaced rows of one array (or a HostData's first, middle and
  last examples) into the hash ``h``: cheap, and different for another source, order or
  truncation of the data."""
  if x is None:
    h.update(b"none")
    return
  if not hasattr(x, "shape"):  # HostData: its size and three examples
    n = len(x)
    h.update(f"{type(x).__name__}:{n}".encode())
    with contextlib.suppress(Exception):
      inputs, labels = x.load(np.asarray(sorted({0, n // 2, max(n - 1, 0)})))
      h.update(np.ascontiguousarray(inputs).tobytes() + np.ascontiguousarray(labels).tobytes())
    return
  x = np.asarray(x)
  h.update(f"{x.shape}{x.dtype}".encode())
  if x.size == 0:
    return
  row = max(1, x.nbytes // max(1, x.shape[0]))
  step = max(1, (x.shape[0] * row) // _SAMPLE_BYTES)
  h.update(np.ascontiguousarray(x[::step]).tobytes())


def data_identity(config, dataset) -> dict:
  """What the data a run trains and evaluates on is: the data set's name, a digest of the
  arrays as loaded (shapes, dtypes and a sample of rows), and, where the loader knows it,
  its source (``dataset.source``: e.g. the files read and their sizes), which refines it."""
  h = hashlib.blake2b(digest_size=8)
  evaluated = dataset.eval_data if isinstance(dataset.eval_data, tuple) else (
      dataset.eval_data, None)
  for part in (dataset.train_inputs, dataset.train_labels, *evaluated):
    _array_digest(part, h)
  out = {"dataset": config.get("dataset"), "arrays": h.hexdigest(),
         "num_classes": dataset.num_classes}
  source = getattr(dataset, "source", None)
  if source:
    out["source"] = _plain(source)
  return out


def run_fields(config: dict, cell: dict, options: dict) -> dict:
  """The config fields that determine one run's numbers, flat (``algorithm_options.base``):
  ``config`` (a config's ``to_dict()``, or a run's ``config.json``) without the fields
  that do not change results or that name the sweep's set of runs, and the run's own
  algorithm, N, η, γ and resolved ``options``."""
  own = {k: v for k, v in config.items()
         if k not in RUN_INDEPENDENT + SWEEP_SETS + ("name",)}
  own.update({k: cell[k] for k in ("algorithm", "num_workers", "learning_rate", "momentum")})
  own["algorithm_options"] = dict(options)
  return _flat(_plain(own))


def fingerprint(config: dict, cell: dict, options: dict, data: dict) -> dict:
  """The fingerprint of one run: :func:`run_fields`, ``data.*`` (:func:`data_identity`)
  and ``dana_jax`` (the library's version)."""
  import dana_jax
  return {**run_fields(config, cell, options), **_flat({"data": _plain(data)}),
          "dana_jax": dana_jax.__version__}


def write_fingerprint(run_dir: pathlib.Path, fields: dict) -> None:
  tmp = run_dir / (FINGERPRINT + ".tmp")
  tmp.write_text(json.dumps(fields, indent=2, sort_keys=True))
  tmp.replace(run_dir / FINGERPRINT)


def _read_json(path: pathlib.Path):
  """(value, None), or (None, why) for a file that is missing, empty or not JSON."""
  try:
    text = path.read_text()
  except FileNotFoundError:
    return None, "missing"
  except (OSError, UnicodeDecodeError) as e:
    return None, f"unreadable ({type(e).__name__})"
  if not text.strip():
    return None, "empty"
  try:
    return json.loads(text), None
  except json.JSONDecodeError as e:
    return None, f"not JSON ({e.msg} at line {e.lineno})"


def summary(run_dir: pathlib.Path) -> dict | None:
  """A run's summary, or None if it has none that can be read (then it is not finished)."""
  value, _ = _read_json(run_dir / "summary.json")
  return value if isinstance(value, dict) and "final_test_error" in value else None


def metrics_damage(path: pathlib.Path) -> str | None:
  """Why a run's ``metrics.jsonl`` cannot be trusted (missing, a line that is not JSON —
  e.g. the torn last line of a killed write), or None."""
  try:
    lines = path.read_text().splitlines()
  except FileNotFoundError:
    return "missing"
  except (OSError, UnicodeDecodeError) as e:
    return f"unreadable ({type(e).__name__})"
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      json.loads(line)
    except json.JSONDecodeError:
      return f"line {i + 1} of {len(lines)} is not JSON" + (
          " (a torn last line)" if i == len(lines) - 1 else "")
  return None


def params_damage(path: pathlib.Path) -> str | None:
  """Why a run's ``final_params.npz`` cannot be read, or None (also when there is none:
  it is written only with ``save_final_params``)."""
  if not path.exists():
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      _ = f.files
  except Exception as e:  # a truncated zip: BadZipFile, OSError, ValueError, EOFError
    return f"unreadable ({type(e).__name__})"
  return None


def _set_aside(path: pathlib.Path) -> pathlib.Path:
  """Renames a damaged file to ``<name>.damaged`` (kept for inspection, never read)."""
  target = path.with_name(path.name + ".damaged")
  if target.is_dir():
    shutil.rmtree(target)
  path.replace(target)
  return target


def _diff(stored: dict, current: dict, keys) -> dict:
  return {k: (stored.get(k, "(none)"), current.get(k, "(none)")) for k in keys
          if stored.get(k, "(none)") != current.get(k, "(none)")}


@dataclasses.dataclass
class Survey:
  """What :func:`survey` found in a sweep's run directories."""

  finished: set  # names of points whose every run is finished and current
  changed: dict  # point name -> {field: (old, new)}
  notes: list  # one line per repaired or set-aside file
  others: dict = dataclasses.field(default_factory=dict)  # finished runs of no point whose
  # sweep-wide fields differ: run name -> {field: (old, new)}


def _cell_state(run_dir: pathlib.Path, current: dict, notes: list):
  """(state, differences or None) of one run directory: "new" (nothing of value in it),
  "changed" (another fingerprint), "partial" (to resume or re-run), "damaged" (finished,
  a file set aside: re-run), "rewrite_config" (finished, its config.json to rewrite) or
  "finished"."""
  if not run_dir.is_dir():
    return "new", None
  done = summary(run_dir)
  has_summary = (run_dir / "summary.json").exists()
  has_checkpoint = (run_dir / "checkpoint").exists()
  if done is None and not has_summary and not has_checkpoint:
    return "new", None  # nothing of value: written afresh when the run starts
  stored, why = _read_json(run_dir / FINGERPRINT)
  if stored is not None and isinstance(stored, dict):
    differ = _diff(stored, current, sorted(set(stored) | set(current)))
  else:
    if why != "missing":
      notes.append(f"{run_dir / FINGERPRINT}: {why}; comparing its config.json instead")
    config, why_config = _read_json(run_dir / "config.json")
    if not isinstance(config, dict):
      if done is None:  # a checkpoint: it carries its own fingerprint and is checked on resume
        return "partial", None
      raise ConfigError(
          f"{run_dir / 'config.json'}: {why_config or 'not a JSON object'}, and the run has "
          f"no {FINGERPRINT}: which configuration it ran cannot be told; delete {run_dir} to "
          "re-run it, or use another --workdir")
    try:
      from experiments.train import options_for
      old = run_fields(config, config, options_for(config, config["algorithm"],
                                                   config["num_workers"]))
    except (KeyError, TypeError, ValueError, AttributeError):
      old = {"config.json": "(unreadable fields)"}
    # A field the run's config.json does not name came after it: its default is the old
    # behaviour. The data and the version were not recorded: not compared.
    keys = set(old) | {k for k in current if k.split(".")[0] in config}
    differ = _diff(old, current, sorted(keys))
  if differ:
    return "changed", differ
  if done is None:
    if has_summary:
      _, why = _read_json(run_dir / "summary.json")
      moved = _set_aside(run_dir / "summary.json")
      notes.append(f"{run_dir / 'summary.json'}: {why or 'not a summary'}; set aside as "
                   f"{moved.name}; the run is re-run" + (" from its checkpoint"
                                                         if has_checkpoint else ""))
    return "partial", None
  for name, why in (("metrics.jsonl", metrics_damage(run_dir / "metrics.jsonl")),
                    ("final_params.npz", params_damage(run_dir / "final_params.npz"))):
    if why is not None:
      if (run_dir / name).exists():
        _set_aside(run_dir / name)
      notes.append(f"{run_dir / name}: {why}; " + (
          f"set aside as {name}.damaged; " if why != "missing" else "") + "the run is re-run")
      return "damaged", None
  config, why = _read_json(run_dir / "config.json")
  if not isinstance(config, dict):  # the fingerprint vouches for the run: rewrite it
    notes.append(f"{run_dir / 'config.json'}: {why or 'not a JSON object'}; rewritten "
                 f"from this sweep's config ({FINGERPRINT} matches)")
    return "rewrite_config", None
  return "finished", None


# A run's own fields: they differ between the runs of one sweep.
_OWN = ("algorithm", "num_workers", "learning_rate", "momentum", "algorithm_options")


def _other_run(run_dir: pathlib.Path, current: dict) -> dict:
  """How a finished run that is no point of this sweep differs from it in the fields every
  run of one sweep shares (all but :data:`_OWN`): the report would draw it beside them."""
  stored, _ = _read_json(run_dir / FINGERPRINT)
  if not isinstance(stored, dict):
    config, _ = _read_json(run_dir / "config.json")
    if not isinstance(config, dict):
      return {}  # nothing to tell it by; the report reads only summaries it can
    stored = run_fields(config, config, {})  # as in _cell_state: fields it names only
    current = {k: v for k, v in current.items() if k.split(".")[0] in config}
  keys = {k for k in set(stored) | set(current) if k.split(".")[0] not in _OWN}
  return _diff(stored, current, sorted(keys))


def others_message(workdir: pathlib.Path, others: dict) -> str:
  """The one line of a sweep whose work directory holds finished runs of another sweep."""
  pairs = _pairs(others)
  names = list(others)
  runs = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
  return (f"--workdir={str(workdir)!r} holds {len(names)} finished run(s) of another sweep "
          f"({runs}; {pairs}), which its report would show beside this one's: use a new "
          "--workdir, or move them out of it")


def survey(workdir: pathlib.Path, points: list[dict], fingerprints: list[list[dict]],
           rewrite_config) -> Survey:
  """Inspects every run directory of a sweep's ``points`` (``fingerprints[i][j]``: the
  current fingerprint of point i's cell j) before anything runs.

  A point is finished when every run has a readable summary, metrics and final
  parameters and the run's fingerprint is the current one; it is changed when
  some run has another fingerprint. A damaged summary, metrics file or final
  parameters file is set aside (``<file>.damaged``) and its point re-run (from
  its checkpoint where there is one); a damaged ``config.json`` of a finished
  run is rewritten (``rewrite_config(run_dir, cell)``) when its fingerprint
  matches, and refused when there is no fingerprint to tell.
  """
  found = Survey(set(), {}, [])
  names = {c["name"] for p in points for c in p["cells"]}
  for run_dir in sorted(p.parent for p in workdir.glob("*/summary.json")):
    if run_dir.name not in names and fingerprints:
      differ = _other_run(run_dir, fingerprints[0][0])
      if differ:
        found.others[run_dir.name] = differ
  for point, prints in zip(points, fingerprints, strict=True):
    states = []
    for cell, current in zip(point["cells"], prints, strict=True):
      state, differ = _cell_state(workdir / cell["name"], current, found.notes)
      if state == "changed":
        found.changed.setdefault(point["name"], {}).update(differ)
      if state == "rewrite_config":
        rewrite_config(workdir / cell["name"], cell)
        state = "finished"
      states.append(state)
    if point["name"] not in found.changed and all(s == "finished" for s in states):
      found.finished.add(point["name"])
  return found


def _short(value, width: int = 40) -> str:
  text = json.dumps(value) if not isinstance(value, str) else value
  return text if len(text) <= width else text[:width - 1] + "…"


def _pairs(runs: dict) -> str:
  """"field: old → new; …" over runs' differences (each pair once)."""
  pairs: dict = {}
  for differ in runs.values():
    for field, (old, new) in differ.items():
      pairs.setdefault(field, [])
      if (old, new) not in pairs[field]:
        pairs[field].append((old, new))
  return "; ".join(f"{f}: " + ", ".join(f"{_short(o)} → {_short(n)}" for o, n in ps)
                   for f, ps in pairs.items())


def changed_message(workdir: pathlib.Path, changed: dict) -> str:
  """The one line of a sweep that finds runs of another configuration."""
  fields = _pairs(changed)
  names = list(changed)
  runs = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
  return (f"--workdir={str(workdir)!r} holds {len(names)} run(s) of another configuration "
          f"({runs}; {fields}): use a new --workdir, or --config.rerun_changed=true to re-run "
          "the changed points (their old results are deleted)")


# ---------------------------------------------------------------------------- the lock


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def _holder(info) -> str:
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
      info, _ = _read_json(path)
      raise ConfigError(
          f"--workdir={str(workdir)!r} is in use by another sweep ({_holder(info)}): wait "
          "for it to end, or give another --workdir") from None
    except OSError:  # no flock here (some network file systems): the pid decides
      locked = False
    info, _ = _read_json(path)
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
  info, _ = _read_json(pathlib.Path(workdir) / LOCK)
  seen = isinstance(info, dict) and info.get("token") == token
  return bool(np.all(multihost_utils.process_allgather(np.asarray(seen))))


__all__ = ["RUN_INDEPENDENT", "Survey", "changed_message", "data_identity", "fingerprint",
           "run_fields", "shared_by_processes", "survey", "sweep_lock",
           "write_fingerprint"]
