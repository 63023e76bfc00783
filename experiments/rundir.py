"""A sweep's work directory: what each run directory ran, one sweep at a time, damaged files.

Three guarantees, each one line when it refuses (a :class:`ConfigError`):

* **Fingerprints** (:mod:`experiments.run_fingerprint`). Every run directory
  holds ``fingerprint.json``: the fields that determine its numbers — the
  run's own config (its algorithm, N, η, γ and resolved options; every other
  field but :data:`RUN_INDEPENDENT`), the identity of its data
  (:func:`data_identity`) and the dana_jax version.
  A sweep that finds a run of its own with another fingerprint refuses,
  listing the fields that differ (old → new), unless
  ``config.rerun_changed`` says to re-run those points. A run written before
  fingerprints existed is compared by its ``config.json``.
* **One sweep per work directory** (:mod:`experiments.sweep_lock`): ``.sweep.lock``
  names the holder (pid, host, start time) and is held with ``flock``, which
  the kernel releases when the holder dies, so a killed sweep's lock is taken
  over by the next one.
* **Damaged files** (:func:`survey`): a run file that cannot be read is set
  aside as ``<file>.damaged`` and its point re-run (a damaged checkpoint is
  dropped, :mod:`dana_jax.checkpoint`), or, where the run cannot be told
  apart from another configuration's, the sweep refuses naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import numpy as np

from experiments.run_fingerprint import (
  FINGERPRINT,
  RUN_INDEPENDENT,
  data_identity,
  fingerprint,
  run_fields,
  write_fingerprint,
)
from experiments.runfiles import read_json
from experiments.sweep_lock import LOCK, shared_by_processes, sweep_lock
from experiments.validate import ConfigError


def summary(run_dir: pathlib.Path) -> dict | None:
  """A run's summary, or None if it has none that can be read (then it is not finished)."""
  value, _ = read_json(run_dir / "summary.json")
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


def _differences(run_dir: pathlib.Path, current: dict, notes: list,
                 finished: bool) -> dict | None:
  """How a run directory's fingerprint differs from ``current``: {field: (old, new)}, empty
  when it is the same. A run without a readable fingerprint is compared by its
  ``config.json`` (the fields it names); None: an unfinished run with neither (its
  checkpoint carries its own fingerprint, checked on resume)."""
  stored, why = read_json(run_dir / FINGERPRINT)
  if isinstance(stored, dict):
    return _diff(stored, current, sorted(set(stored) | set(current)))
  if why != "missing":
    notes.append(f"{run_dir / FINGERPRINT}: {why}; comparing its config.json instead")
  config, why_config = read_json(run_dir / "config.json")
  if not isinstance(config, dict):
    if not finished:  # a checkpoint: it carries its own fingerprint and is checked on resume
      return None
    raise ConfigError(
        f"{run_dir / 'config.json'}: {why_config or 'not a JSON object'}, and the run has "
        f"no {FINGERPRINT}: which configuration it ran cannot be told; delete {run_dir} to "
        "re-run it, or use another --workdir")
  try:
    from experiments.builders import options_for
    old = run_fields(config, config, options_for(config, config["algorithm"],
                                                 config["num_workers"]))
  except (KeyError, TypeError, ValueError, AttributeError):
    old = {"config.json": "(unreadable fields)"}
  # A field the run's config.json does not name came after it: its default is the old
  # behaviour. The data and the version were not recorded: not compared.
  keys = set(old) | {k for k in current if k.split(".")[0] in config}
  return _diff(old, current, sorted(keys))


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
  differ = _differences(run_dir, current, notes, finished=done is not None)
  if differ is None:
    return "partial", None
  if differ:
    return "changed", differ
  if done is None:
    if has_summary:
      _, why = read_json(run_dir / "summary.json")
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
  config, why = read_json(run_dir / "config.json")
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
  stored, _ = read_json(run_dir / FINGERPRINT)
  if not isinstance(stored, dict):
    config, _ = read_json(run_dir / "config.json")
    if not isinstance(config, dict):
      return {}  # nothing to tell it by; the report reads only summaries it can
    stored = run_fields(config, config, {})  # as in _cell_state: fields it names only
    current = {k: v for k, v in current.items() if k.split(".")[0] in config}
  keys = {k for k in set(stored) | set(current) if k.split(".")[0] not in _OWN}
  return _diff(stored, current, sorted(keys))


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


def _changes_text(runs: dict) -> str:
  """"field: old → new; …" over runs' differences (each pair once)."""
  pairs: dict = {}
  for differ in runs.values():
    for field, (old, new) in differ.items():
      pairs.setdefault(field, [])
      if (old, new) not in pairs[field]:
        pairs[field].append((old, new))
  return "; ".join(f"{f}: " + ", ".join(f"{_short(o)} → {_short(n)}" for o, n in ps)
                   for f, ps in pairs.items())


def _runs_and_fields(runs: dict) -> str:
  """"name, name, name and k more; field: old → new; …": the runs (the first three named)
  and how they differ from this sweep."""
  names = list(runs)
  listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
  return f"{listed}; {_changes_text(runs)}"


def others_message(workdir: pathlib.Path, others: dict) -> str:
  """The one line of a sweep whose work directory holds finished runs of another sweep."""
  return (f"--workdir={str(workdir)!r} holds {len(others)} finished run(s) of another sweep "
          f"({_runs_and_fields(others)}), which its report would show beside this one's: "
          "use a new --workdir, or move them out of it")


def changed_message(workdir: pathlib.Path, changed: dict) -> str:
  """The one line of a sweep that finds runs of another configuration."""
  return (f"--workdir={str(workdir)!r} holds {len(changed)} run(s) of another configuration "
          f"({_runs_and_fields(changed)}): use a new --workdir, or "
          "--config.rerun_changed=true to re-run the changed points (their old results are "
          "deleted)")


# The fingerprint (experiments.run_fingerprint) and the lock (experiments.sweep_lock) are
# named here too: a sweep reads its work directory through this module.
__all__ = ["FINGERPRINT", "LOCK", "RUN_INDEPENDENT", "Survey", "changed_message",
           "data_identity", "fingerprint", "others_message", "run_fields",
           "shared_by_processes", "summary", "survey", "sweep_lock", "write_fingerprint"]
