"""The host side of a chunk: which events, rows, batches and examples it holds.

Pure numpy on the host, run on a thread while the previous chunk computes.
Every per-replica array is stacked on a leading replica axis.
"""

from __future__ import annotations

import numpy as np

from dana_jax import schedule as _schedule
from dana_jax._checks import is_int
from dana_jax.engine.data import HOST_CHUNK_BYTES
from dana_jax.schedule import APPLY, DISCARD, NOOP
from dana_jax.timing import JobTiming


def chunk_ends(num_steps: int, chunk_steps: int | None, steps_per_epoch) -> list[int]:
  """Master steps at which chunks end: every ``chunk_steps``, or (None) at every epoch's
  end — ``ceil(e · steps_per_epoch)``, the step in which epoch e's last batch falls."""
  if chunk_steps is not None:
    ends = list(range(chunk_steps, num_steps, chunk_steps))
  else:
    ends, e = [], 1
    while (end := int(np.ceil(e * steps_per_epoch - 1e-9))) < num_steps:
      if not ends or end > ends[-1]:
        ends.append(end)
      e += 1
  return ends + [num_steps]


def schedules(sim, num_steps: int, chunk_steps: int | None) -> list:
  """One schedule per replica (rounds if synchronous), blocks ending at chunk ends; a job
  of H batches takes H draws of the timing model."""
  if sim.synchronous:
    return [_schedule.make_rounds(sim.timing, sim.num_workers, num_steps, seed=s,
                                  rule=sim.round_rule) for s in sim.timing_seeds]
  ends = chunk_ends(num_steps, chunk_steps, sim.steps_per_epoch)
  per_job = sim.program.batches_per_job

  def timing(steps):  # per worker (DyLU) or one H
    if steps is not None:
      return JobTiming(sim.timing, tuple(int(h) for h in steps))
    return sim.timing if per_job == 1 else JobTiming(sim.timing, per_job)

  return [_schedule.make_schedule(timing(steps), sim.num_workers, num_steps, seed=s,
                                  block_size=sim.block_size, boundaries=ends[:-1],
                                  restart_rule=sim.restart_rule, discard_rule=sim.discard_rule)
          for s, steps in zip(sim.timing_seeds, sim.job_steps)]


def default_chunk_steps(sim) -> int | None:
  """One epoch (None: chunks end at epoch ends, for epochs of a fractional number of
  steps); with :class:`HostData`, at most ``HOST_CHUNK_BYTES`` of inputs per chunk."""
  if not sim.host_data:
    return sim.steps_per_epoch if is_int(sim.steps_per_epoch) else None
  per_step = (sim.train_inputs.example_nbytes() * sim.batch_size * sim.num_replicas
              * (sim.gradients_per_round if sim.synchronous else sim.program.batches_per_job))
  return max(1, min(int(np.ceil(sim.steps_per_epoch)), HOST_CHUNK_BYTES // per_step))


def _job_batches(dispatch: np.ndarray, per_job: int, sched=None, steps=None) -> np.ndarray:
  """Batch numbers [..., H] of jobs: dispatch d takes batches dH … dH + H − 1.

  With per-worker H_i (``steps``, DyLU): dispatch d of worker w(d) takes the next H_i
  batches of the stream, o_d … o_d + H_w(d) − 1 with o_d = Σ_(d' < d) H_w(d'); its
  entries past H_w(d) hold −o_d − 1 (a step not run; see ``step.job``). Dispatches are
  numbered in the order they are made: worker k's first is k, then one per apply or
  discard event, for that event's worker (docs/spec.md §1).
  """
  dispatch = np.asarray(dispatch, np.int64)
  if steps is None:
    return (dispatch[..., None] * per_job + np.arange(per_job)).astype(np.int32)
  made = (sched.event_kind == APPLY) | (sched.event_kind == DISCARD)
  owner = np.concatenate([np.arange(len(steps)), sched.event_worker[made]])
  length = np.asarray(steps, np.int64)[owner]
  offset = np.concatenate([[0], np.cumsum(length)[:-1]])
  batches = offset[dispatch][..., None] + np.arange(per_job)
  runs = np.arange(per_job) < length[dispatch][..., None]
  return np.where(runs, batches, -offset[dispatch][..., None] - 1).astype(np.int32)


def _real_batches(batches: np.ndarray) -> np.ndarray:
  """The stream batches whose examples a job loads (−b − 1 marks a step not run)."""
  return np.where(batches >= 0, batches, -batches - 1)


def rows_per_chunk(sim, schedules, ends: list[int]) -> int | None:
  """The static number of scan rows of every chunk: the most blocks (``blocks``) or
  events (``steps`` with restarts) in any chunk of any replica; None: one per step."""
  if sim.synchronous or (sim.execution == "steps" and not sim.masked_steps):
    return None
  most, start = 1, 0
  for stop in ends:
    for sched in schedules:
      first, last = sched.events_of_steps(start, stop)
      if sim.execution == "blocks":
        first, last = np.searchsorted(sched.block_starts, [first, last])
      most = max(most, int(last - first))
    start = stop
  return most


def _scan_rows(sim, sched, order, index, first, steps=None):
  """The scan inputs of events ``index`` (any shape; -1: a no-op) and the kinds."""
  real = index >= 0
  safe = np.where(real, index, first)
  kind = np.where(real, sched.event_kind[safe], NOOP).astype(np.int8)
  workers = np.where(real, sched.event_worker[safe], 0).astype(np.int32)
  batches = _job_batches(sched.event_dispatch[safe], sim.program.batches_per_job, sched,
                         steps)
  return (workers, kind, sim.examples(order.batches(_real_batches(batches))), batches), kind


def _events(sim, sched, order, start, stop, rows, steps=None):
  first, last = sched.events_of_steps(start, stop)
  index = np.arange(first, last)
  if rows is not None:  # restarts: a static number of events, padded with no-ops
    index = np.pad(index, (0, rows - index.shape[0]), constant_values=-1)
  xs, kind = _scan_rows(sim, sched, order, index, first, steps)
  return xs, kind == APPLY


def _blocks(sim, sched, order, start, stop, rows, steps=None):
  first, last = sched.events_of_steps(start, stop)
  b0, b1 = np.searchsorted(sched.block_starts, [first, last])
  index, _ = sched.padded_blocks(int(b0), int(b1))  # padded entries hold -1
  width = sim.block_width - sim.block_size  # no-op columns for the worker devices
  index = np.pad(index, ((0, rows - index.shape[0]), (0, width)), constant_values=-1)
  xs, kind = _scan_rows(sim, sched, order, index, first, steps)
  return xs, (kind == APPLY).ravel()


def _rounds(sim, order, start, stop):
  g = sim.gradients_per_round
  batches = (np.arange(start, stop)[:, None] * g + np.arange(g)[None, :]).astype(np.int32)
  return (sim.examples(order.batches(batches[..., None])), batches[..., None]), np.ones(
      stop - start, bool)


def chunk_inputs(sim, schedules, start: int, stop: int, rows: int | None = None):
  """Scan inputs and the valid (apply) mask of master steps ``start..stop-1``."""
  per = []
  for r, order in enumerate(sim.orders):
    if sim.synchronous:
      per.append(_rounds(sim, order, start, stop))
    elif sim.execution == "steps":
      per.append(_events(sim, schedules[r], order, start, stop, rows, sim.job_steps[r]))
    else:
      per.append(_blocks(sim, schedules[r], order, start, stop, rows, sim.job_steps[r]))
  return sim.placement.stack([p[0] for p in per]), sim.placement.stack([p[1] for p in per])
