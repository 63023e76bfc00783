"""What determines a run's numbers: its fingerprint, written beside it as ``fingerprint.json``.

A fingerprint holds the run's own config (its algorithm, N, η, γ and resolved
options; every other field but :data:`RUN_INDEPENDENT`), the identity of its
data (:func:`data_identity`) and the dana_jax version, flat
(``algorithm_options.base``, ``data.arrays``). :func:`experiments.rundir.survey`
compares it with the fingerprint a sweep would write now.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib

import numpy as np

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
_SAMPLE_BYTES = 1 << 20  # per array: the digest reads evenly spaced rows of about this much


def _plain(value):
  """``value`` as JSON gives it back (tuples as lists, numpy scalars as numbers)."""
  return json.loads(json.dumps(value, default=lambda x: x.tolist() if hasattr(x, "tolist")
                               else list(x)))


def _flat(tree: dict, prefix: str = "") -> dict:
  """A nested dict as one level, keys joined by dots (``{"a": {"b": 1}}`` → ``{"a.b": 1}``)."""
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
  """Writes ``fields`` to ``run_dir/fingerprint.json`` whole (a temporary file, renamed)."""
  tmp = run_dir / (FINGERPRINT + ".tmp")
  tmp.write_text(json.dumps(fields, indent=2, sort_keys=True))
  tmp.replace(run_dir / FINGERPRINT)


__all__ = ["FINGERPRINT", "RUN_INDEPENDENT", "SWEEP_SETS", "data_identity", "fingerprint",
           "run_fields", "write_fingerprint"]
