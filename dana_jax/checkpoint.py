"""Checkpoints of a simulation (orbax): the whole carried state and the history so far.

:func:`dana_jax.simulate` with ``checkpoint_dir`` saves after chunks and, when
started again on the same directory, resumes from the last saved chunk: the
schedule, the data order and every random key are functions of the seeds and
the step, so the resumed run computes exactly what an uninterrupted one would
(tested by killing a run with SIGKILL). A checkpoint records a fingerprint of
the simulation; one written by a different configuration is refused.

orbax writes each checkpoint to a temporary directory and renames it when
complete, so a kill during a save leaves the previous checkpoint intact. A
checkpoint that cannot be read back (a file emptied or truncated, a part
missing) raises :class:`DamagedCheckpoint`, one line naming the directory,
instead of whatever orbax or TensorStore raises deep inside (a KeyError, a
JSONDecodeError); deleting the directory starts the run afresh.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import jax
import numpy as np

from dana_jax.errors import ConfigError

# Changes when the layout of the carried state (dana_jax.SimState) changes; a checkpoint
# records it, and one of another format is refused.
STATE_FORMAT = 3


def _digest(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(spec, model, hyperparams: dict, num_steps: int, chunk_steps: int,
                extra: dict | None = None) -> dict[str, str]:
  """What must be equal for a checkpoint to be resumed: one string per field, of the run
  (a :class:`~dana_jax.RunSpec`), its model's parameter shapes, its hyperparameters (one
  array per field, a value per replica), its step counts and ``extra``."""
  timing = spec.timing
  timing_text = (f"trace:{_digest(np.asarray(timing.batch_times, np.float64).tobytes())}"
                 if hasattr(timing, "batch_times") else repr(timing))
  params, _ = jax.eval_shape(model.init, jax.random.key(0))
  shapes = [f"{x.shape}{x.dtype}" for x in jax.tree_util.tree_leaves(params)]
  out = {
      "algorithm": spec.algorithm.name,
      "algorithm_options": json.dumps(dict(spec.options), sort_keys=True, default=str),
      "num_workers": str(spec.num_workers),
      "batch_size": str(spec.batch_size),
      "num_examples": str(spec.num_examples),
      "seeds": str(list(spec.seeds)),
      "timing_seeds": str(list(spec.timing_seeds)),
      "hyperparams": json.dumps({k: v.tolist() for k, v in hyperparams.items()},
                                sort_keys=True),
      "timing": timing_text,
      "execution": spec.execution,
      "block_size": str(spec.block_size),
      "worker_program": repr(spec.program),
      "round_rule": repr(spec.round_rule),
      "restart_rule": getattr(spec.restart_rule, "__qualname__",
                              repr(spec.restart_rule)),
      "discard_rule": repr(spec.discard_rule),
      "model_parameters": _digest("|".join(shapes).encode()),
      "num_steps": str(num_steps),
      "chunk_steps": str(chunk_steps),
      "state_format": str(STATE_FORMAT),
  }
  for key, value in (extra or {}).items():
    out[f"extra/{key}"] = value if isinstance(value, str) else json.dumps(
        value, sort_keys=True, default=str)
  return out


class OtherConfiguration(ConfigError):
  """A checkpoint written by a simulation with another :func:`fingerprint`."""


class DamagedCheckpoint(ConfigError):
  """A checkpoint directory whose latest checkpoint cannot be read back."""


def _why(error: BaseException) -> str:
  """An exception as a short phrase on one line (TensorStore's run to pages)."""
  text = " ".join(str(error).split())
  return f"{type(error).__name__}: {text[:160] + '…' if len(text) > 160 else text}"


class Checkpointer:
  """Saves and restores ``(state, history)`` of one simulation in ``directory``."""

  def __init__(self, directory, fingerprint: dict[str, str]):
    import orbax.checkpoint as ocp

    self._ocp = ocp
    self.directory = pathlib.Path(directory).resolve()
    self.fingerprint = fingerprint
    self.manager = None
    if self.directory.exists() and not self.directory.is_dir():
      # Perhaps no checkpoint at all (a path given by mistake): never "delete it".
      raise DamagedCheckpoint(
          f"checkpoint_dir={str(self.directory)!r} is not allowed: it is a file, not a "
          "directory; give a directory (created if missing), or remove the file if it is "
          "what is left of a checkpoint.")
    try:
      # Synchronous saves: the next chunk donates the state's buffers.
      self.manager = ocp.CheckpointManager(
          self.directory, options=ocp.CheckpointManagerOptions(
              max_to_keep=1, create=True, enable_async_checkpointing=False))
    except Exception as e:  # whatever orbax raises on a directory it cannot list
      raise self._damaged(None, _why(e)) from None

  def _damaged(self, step, why: str) -> DamagedCheckpoint:
    if self.manager is not None:
      try:
        self.close()
      except Exception:  # closing a manager of a broken directory
        pass
    at = "" if step is None else f" (step {step})"
    return DamagedCheckpoint(
        f"checkpoint_dir={str(self.directory)!r} holds a damaged checkpoint{at} that cannot "
        f"be read back ({why}): delete it to start the run afresh.")

  def restore(self, target_state):
    """``(state, history)`` of the latest checkpoint, or None if there is none.

    Raises:
      OtherConfiguration: the checkpoint was written by a different configuration.
      DamagedCheckpoint: the latest checkpoint cannot be read back.
    """
    ocp, step = self._ocp, None
    try:
      step = self.manager.latest_step()
      if step is None:
        return None
      meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
      meta = meta["meta"]
      theirs, history = meta["fingerprint"], meta["history"]
      if not isinstance(theirs, dict) or not isinstance(history, list):
        raise ValueError("its metadata is not a fingerprint and a history")
    except Exception as e:  # orbax's KeyError, JSONDecodeError, TensorStore's
      raise self._damaged(step, _why(e)) from None
    differ = [f"{k}: {theirs.get(k)!r} in the checkpoint, {v!r} now"
              for k, v in self.fingerprint.items() if theirs.get(k) != v]
    differ += [f"{k}: only in the checkpoint" for k in theirs if k not in self.fingerprint]
    if differ:
      raise OtherConfiguration(
          f"checkpoint_dir={str(self.directory)!r} holds a checkpoint of a different "
          f"configuration ({'; '.join(differ)}). Delete it, or use another directory, to "
          "start afresh.")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
    try:
      restored = self.manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    except Exception as e:  # a part of the state missing or unreadable
      raise self._damaged(step, _why(e)) from None
    return restored["state"], history

  def save(self, step: int, state, history: list[dict]) -> None:
    ocp = self._ocp
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave({"fingerprint": self.fingerprint, "history": history})),
        force=True)
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


class Checkpointing:
  """A hook of :func:`dana_jax.simulate`: saves ``(state, history)`` in ``directory`` at
  the first chunk end after every ``every`` master steps (None: every chunk) and after
  the last chunk; :meth:`restore` resumes from the latest checkpoint."""

  def __init__(self, directory, fingerprint: dict[str, str], every: int | None = None):
    self.checkpointer = Checkpointer(directory, fingerprint)
    self.every = every

  def restore(self, target_state):
    """``(state, history)`` of the latest checkpoint, or None (:meth:`Checkpointer.restore`)."""
    return self.checkpointer.restore(target_state)

  def __call__(self, end) -> None:
    if end.due(self.every):
      self.checkpointer.save(end.stop, end.state, end.history)

  def close(self) -> None:
    self.checkpointer.close()


__all__ = ["STATE_FORMAT", "Checkpointer", "Checkpointing", "DamagedCheckpoint",
           "OtherConfiguration", "fingerprint"]
