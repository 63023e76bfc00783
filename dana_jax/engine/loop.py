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
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dana_jax import checkpoint as _checkpoint
from dana_jax import cost as _cost
from dana_jax import sharding as _sharding
from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.engine import arguments, compatibility, memory, plan
from dana_jax.engine.core import Model, SimState, take
from dana_jax.engine.host_data import HostData
from dana_jax.engine.placement import over_replicas
from dana_jax.engine.run_spec import RunSpec


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
  compatibility.check_data(model, inputs, labels, what="eval")
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


class ChunkEnd(NamedTuple):
  """What a hook of :func:`simulate` sees after a chunk: the run, its state after master
  step ``stop``, whether this chunk is the last one run (the end, or every replica
  diverged), the chunk's ``record`` (already the last entry of ``history``), the
  history so far."""

  simulator: object
  state: SimState
  start: int
  stop: int
  last: bool
  record: dict
  history: list

  def due(self, every: int | None) -> bool:
    """Whether work every ``every`` master steps (None: every chunk) runs now: at the
    first chunk end after each multiple of ``every``, and after the last chunk."""
    return _every(every, self.start, self.stop, self.last)


class Evaluation:
  """A hook: evaluates the master's θ of every replica on the test and train sets and adds
  ``<split>/<metric>`` to each replica's record."""

  def __init__(self, sets, every: int | None = None):
    self.sets, self.every = [(d, s) for d, s in sets if d is not None], every

  def __call__(self, end: ChunkEnd) -> None:
    if not self.sets or not end.due(self.every):
      return
    simulator, state = end.simulator, end.state
    weights = (state.params, state.model_state)
    if jax.process_count() > 1:  # sharded over processes: gather, then evaluate locally
      weights = _sharding.to_host(weights)
    for data, split in self.sets:
      per = evaluate_replicas(simulator.model, *weights,
                              *((data,) if isinstance(data, HostData) else data),
                              replicated=not simulator.spec.single,
                              replica_execution=simulator.spec.replica_execution)
      for rep, values in zip(end.record["replicas"], per, strict=True):
        rep.update({f"{split}/{k}": v for k, v in values.items()})


class WorkerEvaluation:
  """A hook for per-worker data (docs/spec.md §8.4): the master's θ of every replica on
  each worker's own training examples, as ``train/error_by_worker`` (and
  ``train/loss_by_worker``): one value per worker, each on the first m examples of that
  worker's partition, m = min(smallest partition, ``per_worker``), so one compiled shape.
  Evaluated when the train error is (``train_eval_data`` given, same steps)."""

  def __init__(self, every: int | None = None, per_worker: int = 1000):
    self.every, self.per_worker = every, int(per_worker)

  def __call__(self, end: ChunkEnd) -> None:
    simulator = end.simulator
    parts = [getattr(o, "parts", None) for o in simulator.orders]
    if not end.due(self.every) or any(p is None for p in parts) or not parts:
      return
    weights = (end.state.params, end.state.model_state)
    if jax.process_count() > 1:
      weights = _sharding.to_host(weights)
    for r, (rep, mine) in enumerate(zip(end.record["replicas"], parts, strict=True)):
      one = weights if simulator.spec.single else jax.tree.map(lambda a, r=r: a[r], weights)
      m = max(1, min(self.per_worker, min(len(p) for p in mine)))
      values = [evaluate(simulator.model, *one, *self._examples(simulator, p[:m]))
                for p in mine]
      for key in values[0]:
        rep[f"train/{key}_by_worker"] = [float(v[key]) for v in values]

  @staticmethod
  def _examples(simulator, indices):
    if simulator.host_data is not None:
      return simulator.host_data.load(np.asarray(indices))
    idx = np.asarray(indices)
    if simulator.train_labels is None:
      return (simulator.train_inputs[idx],)
    return simulator.train_inputs[idx], simulator.train_labels[idx]


class Callback:
  """A hook: hands each chunk's record to ``fn``."""

  def __init__(self, fn: Callable[[dict], None]):
    self.fn = fn

  def __call__(self, end: ChunkEnd) -> None:
    self.fn(end.record)


class Progress:
  """A hook: a tqdm progress bar of master steps, with the first replica's training loss.
  On a terminal it redraws in place; into a log file at most once a minute, so a sweep's
  log stays a few lines per run."""

  def __init__(self, num_steps: int, initial: int = 0, desc: str | None = None):
    import sys

    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    self.bar = tqdm(total=num_steps, initial=initial, unit="step", desc=desc, leave=False,
                    mininterval=0.2 if tty else 60.0, maxinterval=600.0)

  def __call__(self, end: ChunkEnd) -> None:
    record = end.record
    self.bar.update(end.stop - end.start)
    self.bar.set_postfix(loss=f"{record['replicas'][0]['loss/train']:.3f}",
                         examples_per_s=f"{record['examples_per_second']:.0f}", refresh=False)

  def close(self) -> None:
    self.bar.close()


def simulate(simulator, num_steps: int, *, chunk_steps: int | None = None,
             eval_data=None, train_eval_data=None, eval_every_steps: int | None = None,
             callback: Callable[[dict], None] | None = None, progress: bool = True,
             state: SimState | None = None, checkpoint_dir=None,
             checkpoint_every_steps: int | None = None,
             checkpoint_meta: dict | None = None, hooks: Sequence = ()) -> Result:
  """Runs ``num_steps`` master steps in chunks; the host runs once per chunk.

  After each chunk it calls its hooks in order with a :class:`ChunkEnd`: evaluation
  (:class:`Evaluation`), ``callback`` (:class:`Callback`), checkpointing
  (:class:`dana_jax.checkpoint.Checkpointing`), the progress bar (:class:`Progress`),
  then ``hooks``; a hook's ``close()``, if it has one, is called at the end.

  Args:
    simulator: a :class:`~dana_jax.Simulator`.
    num_steps: T, master steps to simulate (synchronous: rounds;
      ``simulator.spec.steps_for_epochs(E)`` counts them for E epochs).
    chunk_steps: steps per compiled chunk (default
      :func:`dana_jax.engine.plan.default_chunk_steps`: chunks end at epoch ends; less
      for large HostData).
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
    hooks: more hooks: callables of a :class:`ChunkEnd`, called after the others.

  Returns:
    A :class:`Result`; ``history[i]["replicas"][r]`` holds chunk i's metrics of replica r.
  """
  _require(isinstance(getattr(simulator, "spec", None), RunSpec)
           and callable(getattr(simulator, "run_chunk", None)), "simulator",
           arguments.type_name(simulator), "need a dana_jax.Simulator")
  arguments.check_simulate(eval_data=eval_data, train_eval_data=train_eval_data,
                           callback=callback, progress=progress, state=state,
                           checkpoint_dir=checkpoint_dir, checkpoint_meta=checkpoint_meta)
  for field, value, minimum in (("num_steps", num_steps, 1), ("chunk_steps", chunk_steps, 1),
                                ("eval_every_steps", eval_every_steps, 1),
                                ("checkpoint_every_steps", checkpoint_every_steps, 1)):
    _require(value is None or is_int(value, minimum), field, value,
             "need an integer ≥ 1" + ("" if field == "num_steps" else " or None"))
  _require(num_steps is not None, "num_steps", num_steps, "need an integer ≥ 1")
  _require(all(callable(h) for h in hooks), "hooks", [type(h).__name__ for h in hooks],
           "need callables of a dana_jax.engine.loop.ChunkEnd")
  compatibility.check_eval(simulator, eval_data, train_eval_data)
  spec = simulator.spec
  host_data = simulator.host_data
  chunk_steps = chunk_steps or plan.default_chunk_steps(
      spec, None if host_data is None else host_data.example_nbytes())
  # Before the schedules or the state exist.
  memory.check_size(spec, simulator.model, num_steps=num_steps, chunk_steps=chunk_steps,
                    host_data=host_data is not None,
                    data_nbytes=simulator.data_nbytes)
  ends = plan.chunk_ends(num_steps, chunk_steps, spec.steps_per_epoch)
  schedules = plan.schedules(spec, num_steps, chunk_steps)
  rows = plan.rows_per_chunk(spec, schedules, num_steps, chunk_steps)
  state = simulator.init() if state is None else state
  history, resumed_at, checkpointing = [], 0, None
  if checkpoint_dir is not None:
    checkpointing = _checkpoint.Checkpointing(checkpoint_dir, _checkpoint.fingerprint(
        spec, simulator.model, simulator.hyperparams, num_steps, chunk_steps,
        checkpoint_meta), checkpoint_every_steps)
    restored = checkpointing.restore(state)
    if restored is not None:
      state, history = restored
      resumed_at = history[-1]["step"] if history else 0
      for record in history if callback is not None else ():
        callback(record)
  stopped = bool(history) and all(r["nonfinite"] for r in history[-1]["replicas"])
  chunks = [] if stopped else [(a, b) for a, b in zip([0] + ends[:-1], ends, strict=True)
                               if a >= resumed_at]
  chunk_hooks = [Evaluation([(eval_data, "test"), (train_eval_data, "train")], eval_every_steps)]
  if train_eval_data is not None:  # per-worker data: each worker's own train error
    chunk_hooks.append(WorkerEvaluation(eval_every_steps))
  chunk_hooks += [Callback(callback)] if callback is not None else []
  chunk_hooks += [checkpointing] if checkpointing is not None else []
  chunk_hooks += [Progress(num_steps, resumed_at, spec.algorithm.name)] if progress else []
  chunk_hooks += list(hooks)
  try:
    state = _run_chunks(simulator, state, schedules, chunks, rows, num_steps, history,
                        chunk_hooks)
  finally:
    for hook in chunk_hooks:
      if callable(getattr(hook, "close", None)):
        hook.close()
  return Result(state=state, history=history, schedules=schedules, simulator=simulator)


def _run_chunks(simulator, state, schedules, chunks, rows, num_steps, history, hooks):
  """Runs ``chunks`` (the next one's inputs prepared on a host thread while the device
  runs one), appends each chunk's record to ``history`` and calls ``hooks``."""
  spec = simulator.spec
  examples_per_step = spec.batch_size * spec.batches_per_step
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as host:
    def prepare(chunk):
      return host.submit(plan.chunk_inputs, spec, schedules, *chunk, rows,
                         orders=simulator.orders, host_data=simulator.host_data)

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
      record = {"step": stop, "epoch": stop / spec.steps_per_epoch, "seconds": seconds,
                "examples_per_second": (stop - start) * examples_per_step
                * spec.num_replicas / seconds, "replicas": []}
      for r in range(spec.num_replicas):
        rep = {k: (np.asarray(v) if spec.single else np.asarray(v)[r]).tolist()
               for k, v in summary.items()}
        rep["time/simulated"] = float(schedules[r].time[stop - 1])
        # The worker-time held so far (docs/spec.md §8.5: N·t less the time down).
        rep["time/worker"] = _cost.worker_time_to(rep["time/simulated"], spec.num_workers,
                                                  getattr(schedules[r], "down", None))
        rep["jobs/cancelled"] = schedules[r].cancelled_jobs(start, stop)
        record["replicas"].append(rep)
      history.append(record)
      end = ChunkEnd(simulator, state, start, stop, stop == num_steps or diverged, record,
                     history)
      for hook in hooks:
        hook(end)
      if diverged:
        upcoming.cancel()
        break
  return state


def replica(state: SimState, index: int) -> SimState:
  """Replica ``index`` of a stacked state."""
  return take(state, index)
