"""TensorBoard event files of a sweep's metrics, optional (``--config.tensorboard=true``).

Written by tensorboardX (a maintained writer that needs no TensorFlow; install
with ``pip install 'dana_jax[tensorboard]'``) next to ``metrics.jsonl``: one
event directory per run and seed, ``<run>/tensorboard/seed_<k>``, each scalar
metric of a row under its own name against the master step. Browse a sweep
with ``tensorboard --logdir <workdir>``. The JSON files stay the record the
report is drawn from; these are a view of them.
"""

from __future__ import annotations

import math
import pathlib

INSTALL = "pip install 'dana_jax[tensorboard]' (or pip install tensorboardX)"


def available() -> bool:
  try:
    import tensorboardX  # noqa: F401
  except ImportError:
    return False
  return True


class Writers:
  """One event writer per (run directory, seed)."""

  def __init__(self, run_dirs, seeds):
    from tensorboardX import SummaryWriter
    self._writers = {(i, seed): SummaryWriter(logdir=str(pathlib.Path(d) / "tensorboard" /
                                                         f"seed_{seed}"))
                     for i, d in enumerate(run_dirs) for seed in seeds}

  def write(self, run: int, seed: int, row: dict) -> None:
    """The row's finite scalar metrics at its master step."""
    writer = self._writers[(run, seed)]
    for key, value in row.items():
      if key in ("step", "seed") or isinstance(value, bool):
        continue
      if isinstance(value, (int, float)) and math.isfinite(value):
        writer.add_scalar(key, value, global_step=row["step"])

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
