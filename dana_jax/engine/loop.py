"""The host loop: :func:`simulate` runs chunks and hangs periodic work on them.

The host runs once per chunk, never per master step. Between chunks it
evaluates (all replicas in one compiled call per batch), checkpoints, reports
progress and hands each chunk's record to a callback; the next chunk's inputs
are prepared on a host thread while the current chunk runs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import time as _time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dana_jax import sharding as _sharding
from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.engine import arguments, checks, plan
from dana_jax.engine.core import Model, SimState, take
from dana_jax.engine.data import HostData
from dana_jax.engine.placement import over_replicas


def classification_metrics(logits, labels):
  """Per-example softmax cross-entropy and error (argmax ≠ label), integer labels."""
  return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
          "error": jnp.argmax(logits, -1) != labels}


@functools.lru_cache(maxsize=32)
def _evaluation_fn(model: Model, replicated: bool, replica_execution: str):
  """One compiled function per model: the metric sums of a batch (for every replica)."""

  def sums(params, model_state, x, y):
    values = (model.metrics or classification_metrics)(model.predict(params, model_state, x), y)
    return {k: jnp.sum(v) for k, v in values.items()}

  return jax.jit(over_replicas(sums, 2, replica_execution) if replicated else sums)


def evaluate_replicas(model: Model, params, model_state, inputs, labels=None, *,
                      replicated: bool = True, batch_size: int = 1000,
                      replica_execution: str = "vmap") -> list[dict]:
  """Mean of every metric of ``model`` on a data set, for each replica of stacked weights.

  ``inputs, labels``: arrays, or a :class:`HostData` as ``inputs`` and no labels.
  One compiled call per batch evaluates all replicas, batched (``"vmap"``) or one
  after another (``"loop"``; see ``Simulator(replica_execution=...)``).
  """
  _require(replica_execution in ("vmap", "loop"), "replica_execution", replica_execution,
          "choose 'vmap' or 'loop'")
  arguments.check_evaluate(model, inputs, labels, batch_size)
  host = isinstance(inputs, HostData)
  num = len(inputs) if host else int(np.shape(inputs)[0])
  fn, totals = _evaluation_fn(model, replicated, replica_execution), None
  for start in range(0, num, batch_size):
    stop = min(start + batch_size, num)
    x, y = (inputs.load(np.arange(start, stop)) if host
            else (inputs[start:stop], labels[start:stop]))
    batch = jax.device_get(fn(params, model_state, x, y))
    batch = {k: np.atleast_1d(v) for k, v in batch.items()}
    totals = batch if totals is None else {
        k: [a + b for a, b in zip(totals[k], v, strict=True)] for k, v in batch.items()}
    totals = {k: [x.item() for x in v] for k, v in totals.items()}
  count = len(next(iter(totals.values())))
  return [{k: totals[k][r] / num for k in totals} for r in range(count)]


def evaluate(model: Model, params, model_state, inputs, labels=None, batch_size: int = 1000):
  """Mean metrics (classification: cross-entropy ``loss`` and ``error``) of one θ."""
  arguments.check_evaluate(model, inputs, labels, batch_size)  # types first, then contents
  checks.check_data(model, inputs, labels, what="eval")
  arguments.check_weights(model, params, model_state)
  return evaluate_replicas(model, params, model_state, inputs, labels, replicated=False,
                           batch_size=batch_size)[0]


@dataclasses.dataclass
class Result:
  """What :func:`simulate` returns: final state and per-chunk history."""

  state: SimState
  history: list[dict]
  schedules: list
  simulator: object


def _every(steps: int | None, start: int, stop: int, last: bool) -> bool:
  """Whether periodic work runs after chunk ``start..stop``: at the first chunk end after
  every multiple of ``steps`` (None: every chunk), and after the last chunk."""
  return steps is None or last or stop // steps > start // steps


class _Evaluation:
  """Evaluates the master's θ of every replica on the test and train sets."""

  def __init__(self, sets, every):
    self.sets, self.every = [(d, s) for d, s in sets if d is not None], every

  def __call__(self, simulator, state, start, stop, last, replicas):
    if not self.sets or not _every(self.every, start, stop, last):
      return
    weights = (state.params, state.model_state)
    if jax.process_count() > 1:  # sharded over processes: gather, then evaluate locally
      weights = _sharding.to_host(weights)
    for data, split in self.sets:
      per = evaluate_replicas(simulator.model, *weights,
                              *((data,) if isinstance(data, HostData) else data),
                              replicated=not simulator.single,
                              replica_execution=simulator.replica_execution)
      for rep, values in zip(replicas, per, strict=True):
        rep.update({f"{split}/{k}": v for k, v in values.items()})


def simulate(simulator, num_steps: int, *, chunk_steps: int | None = None,
             eval_data=None, train_eval_data=None, eval_every_steps: int | None = None,
             callback: Callable[[dict], None] | None = None, progress: bool = True,
             state: SimState | None = None, checkpoint_dir=None,
             checkpoint_every_steps: int | None = None,
             checkpoint_meta: dict | None = None) -> Result:
  """Runs ``num_steps`` master steps in chunks; the host runs once per chunk.

  Args:
    simulator: a :class:`~dana_jax.Simulator`.
    num_steps: T, master steps to simulate (synchronous: rounds;
      ``simulator.steps_for_epochs(E)`` counts them for E epochs).
    chunk_steps: steps per compiled chunk (default
      :meth:`Simulator.default_chunk_steps`: chunks end at epoch ends; less for
      large HostData).
    eval_data: ``(inputs, labels)`` or a :class:`HostData`, evaluated on the
      master's θ at chunk ends (see ``eval_every_steps``), every replica at once.
    train_eval_data: the same for the train error.
    eval_every_steps: evaluate at the first chunk end after every multiple of
      this many steps, and after the last chunk (default: every chunk).
    callback: called with each chunk's record (a dict, one per replica in
      ``record["replicas"]``).
    progress: show a tqdm progress bar.
    state: start from this state instead of ``simulator.init()``.
    checkpoint_dir: save the state and the history here (orbax,
      ``dana_jax.checkpoint``) and, if it already holds a checkpoint of the same
      simulation, resume from it: the restored chunks' records are passed to
      ``callback`` again first, so a log rebuilt from callbacks is complete. A
      checkpoint of a different simulation raises ValueError.
    checkpoint_every_steps: save at the first chunk end after every multiple of
      this many steps (default: every chunk), and after the last chunk.
    checkpoint_meta: more fields (e.g. the experiment config) that a checkpoint
      must match to be resumed.

  Returns:
    A :class:`Result`; ``history[i]["replicas"][r]`` holds chunk i's metrics of replica r.
  """
  arguments.check_simulate(simulator, eval_data=eval_data, train_eval_data=train_eval_data,
                           callback=callback, progress=progress, state=state,
                           checkpoint_dir=checkpoint_dir, checkpoint_meta=checkpoint_meta)
  for field, value, minimum in (("num_steps", num_steps, 1), ("chunk_steps", chunk_steps, 1),
                                ("eval_every_steps", eval_every_steps, 1),
                                ("checkpoint_every_steps", checkpoint_every_steps, 1)):
    _require(value is None or is_int(value, minimum), field, value,
             "need an integer ≥ 1" + ("" if field == "num_steps" else " or None"))
  _require(num_steps is not None, "num_steps", num_steps, "need an integer ≥ 1")
  checks.check_eval(simulator, eval_data, train_eval_data)
  chunk_steps = chunk_steps or simulator.default_chunk_steps()
  simulator.check_size(num_steps, chunk_steps)  # before the schedules or the state exist
  ends = plan.chunk_ends(num_steps, chunk_steps, simulator.steps_per_epoch)
  schedules = simulator.schedules(num_steps, chunk_steps)
  rows = simulator.rows_per_chunk(schedules, num_steps, chunk_steps)
  state = simulator.init() if state is None else state
  history, resumed_at, checkpointer = [], 0, None
  if checkpoint_dir is not None:
    from dana_jax import checkpoint as _checkpoint

    checkpointer = _checkpoint.Checkpointer(checkpoint_dir, _checkpoint.fingerprint(
        simulator, num_steps, chunk_steps, checkpoint_meta))
    restored = checkpointer.restore(state)
    if restored is not None:
      state, history = restored
      resumed_at = history[-1]["step"] if history else 0
      for record in history if callback is not None else ():
        callback(record)
  stopped = bool(history) and all(r["nonfinite"] for r in history[-1]["replicas"])
  chunks = [] if stopped else [(a, b) for a, b in zip([0] + ends[:-1], ends, strict=True)
                               if a >= resumed_at]
  evaluation = _Evaluation([(eval_data, "test"), (train_eval_data, "train")],
                           eval_every_steps)
  bar = None
  if progress:
    import sys

    from tqdm.auto import tqdm
    # On a terminal it redraws in place; into a log file at most once a minute, so a
    # sweep's log stays a few lines per run.
    tty = sys.stderr.isatty()
    bar = tqdm(total=num_steps, initial=resumed_at, unit="step", desc=simulator.algorithm.name,
               leave=False, mininterval=0.2 if tty else 60.0, maxinterval=600.0)
  examples_per_step = simulator.batch_size * simulator.batches_per_step
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as host:
    prepare = lambda chunk: host.submit(  # noqa: E731
        simulator.chunk_inputs, schedules, *chunk, rows)
    upcoming = prepare(chunks[0]) if chunks else None
    for i, (start, stop) in enumerate(chunks):
      began = _time.perf_counter()
      state, summary = simulator.run_chunk(state, schedules, start, stop, rows,
                                           upcoming.result())
      if i + 1 < len(chunks):
        upcoming = prepare(chunks[i + 1])  # on the host thread while the device runs
      summary = _sharding.to_host(summary)
      seconds = _time.perf_counter() - began
      diverged = bool(np.all(summary["nonfinite"]))  # every replica: the run stops here
      last = stop == num_steps or diverged
      record = {"step": stop, "epoch": stop / simulator.steps_per_epoch, "seconds": seconds,
                "examples_per_second": (stop - start) * examples_per_step
                * simulator.num_replicas / seconds, "replicas": []}
      for r in range(simulator.num_replicas):
        rep = {k: (np.asarray(v) if simulator.single else np.asarray(v)[r]).tolist()
               for k, v in summary.items()}
        rep["time/simulated"] = float(schedules[r].time[stop - 1])
        rep["jobs/cancelled"] = schedules[r].cancelled_jobs(start, stop)
        record["replicas"].append(rep)
      evaluation(simulator, state, start, stop, last, record["replicas"])
      history.append(record)
      if callback is not None:
        callback(record)
      if checkpointer is not None and _every(checkpoint_every_steps, start, stop, last):
        checkpointer.save(stop, state, history)
      if bar is not None:
        bar.update(stop - start)
        bar.set_postfix(loss=f"{record['replicas'][0]['loss/train']:.3f}",
                        examples_per_s=f"{record['examples_per_second']:.0f}", refresh=False)
      if diverged:
        upcoming.cancel()
        break
  if bar is not None:
    bar.close()
  if checkpointer is not None:
    checkpointer.close()
  return Result(state=state, history=history, schedules=schedules, simulator=simulator)


def replica(state: SimState, index: int) -> SimState:
  """Replica ``index`` of a stacked state."""
  return take(state, index)
