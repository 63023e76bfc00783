"""The host side of a chunk: which events, rows, batches and examples it holds.

Pure numpy on the host, run on a thread while the previous chunk computes.
Every per-replica array is stacked on a leading replica axis. Each function takes
the run's :class:`~dana_jax.RunSpec` and what else it needs explicitly.
"""

from __future__ import annotations

import jax
import numpy as np

from dana_jax import schedule as _schedule
from dana_jax._checks import is_int
from dana_jax.engine.host_data import HOST_CHUNK_BYTES
from dana_jax.schedule import APPLY, DISCARD, FAIL, NOOP
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


def schedules(spec, num_steps: int, chunk_steps: int | None = None) -> list:
  """One schedule per replica (rounds if synchronous), blocks ending at chunk ends; a job
  of H batches takes H draws of the timing model."""
  if spec.synchronous:
    return [_schedule.make_rounds(spec.timing, spec.num_workers, num_steps, seed=s,
                                  rule=spec.round_rule, environment=spec.environment,
                                  num_params=spec.num_params) for s in spec.timing_seeds]
  ends = chunk_ends(num_steps, chunk_steps, spec.steps_per_epoch)
  return [_schedule.make_schedule(schedule_timing(spec, steps), spec.num_workers, num_steps, seed=s,
                                  block_size=spec.block_size, boundaries=ends[:-1],
                                  restart_rule=spec.restart_rule, discard_rule=spec.discard_rule,
                                  environment=spec.environment, num_params=spec.num_params)
          for s, steps in zip(spec.timing_seeds, spec.job_steps)]


def schedule_timing(spec, steps=None):
  """The timing of a replica's jobs: a job of H batches takes H draws (``steps``: DyLU's
  H_i per worker, or None)."""
  if steps is not None:
    return JobTiming(spec.timing, tuple(int(h) for h in steps))
  per_job = spec.program.batches_per_job
  return spec.timing if per_job == 1 else JobTiming(spec.timing, per_job)


def default_chunk_steps(spec, example_nbytes: int | None = None) -> int | None:
  """One epoch (None: chunks end at epoch ends, for epochs of a fractional number of
  steps); with training data on the host (:class:`HostData`, ``example_nbytes`` bytes of
  inputs per example), at most ``HOST_CHUNK_BYTES`` of inputs per chunk."""
  if example_nbytes is None:
    return spec.steps_per_epoch if is_int(spec.steps_per_epoch) else None
  per_step = (example_nbytes * spec.batch_size * spec.num_replicas
              * (spec.gradients_per_round if spec.synchronous
                 else spec.program.batches_per_job))
  return max(1, min(int(np.ceil(spec.steps_per_epoch)), HOST_CHUNK_BYTES // per_step))


def check_timing(spec, num_steps: int) -> list[np.ndarray | None]:
  """The batch times of each worker [N] that ``num_steps`` master steps (rounds) use,
  per replica, from the schedules alone (nothing is compiled); a timing trace that does
  not cover them is refused here (ConfigError naming how many it needs). None for a
  round rule of the ``durations`` form, which does not count them."""
  per_job = 1 if spec.synchronous else spec.program.batches_per_job
  return [None if sched.jobs_used is None else
          np.asarray(sched.jobs_used) * (per_job if steps is None else np.asarray(steps))
          for sched, steps in zip(schedules(spec, num_steps), spec.job_steps, strict=True)]


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


def _placed(order, sched, spec, r):
  """``order`` read through replica r's schedule when it is per-worker (docs/spec.md §8.4:
  dispatch d's batches are its worker's own, ``placement.ScheduledOrder``)."""
  bound = getattr(order, "bound", None)
  if bound is None:
    return order
  return bound(sched, spec.num_workers, spec.program.batches_per_job, spec.job_steps[r])


def _real_batches(batches: np.ndarray) -> np.ndarray:
  """The stream batches whose examples a job loads (−b − 1 marks a step not run)."""
  return np.where(batches >= 0, batches, -batches - 1)


def rows_per_chunk(spec, schedules, num_steps: int, chunk_steps: int | None = None
                   ) -> int | None:
  """The static number of scan rows of every chunk (ending at :func:`chunk_ends`): the most
  blocks (``blocks``) or events (``steps`` with restarts) in any chunk of any replica;
  None: one per step."""
  ends = chunk_ends(num_steps, chunk_steps, spec.steps_per_epoch)
  if spec.synchronous or (spec.execution == "steps" and not spec.masked_steps):
    return None
  most, start = 1, 0
  for stop in ends:
    for sched in schedules:
      first, last = sched.events_of_steps(start, stop)
      if spec.execution == "blocks":
        first, last = np.searchsorted(sched.block_starts, [first, last])
      most = max(most, int(last - first))
    start = stop
  return most


def _examples(host_data, indices):
  """What the compiled chunk receives for a batch: its indices, or (HostData) its examples."""
  return indices if host_data is None else host_data.load(indices)


def _scan_rows(spec, sched, order, index, first, steps, host_data):
  """The scan inputs of events ``index`` (any shape; -1: a no-op) and the kinds."""
  real = index >= 0
  safe = np.where(real, index, first)
  kind = np.where(real, sched.event_kind[safe], NOOP)
  kind = np.where(kind == FAIL, NOOP, kind).astype(np.int8)  # a lost job changes nothing
  workers = np.where(real, sched.event_worker[safe], 0).astype(np.int32)
  batches = _job_batches(sched.event_dispatch[safe], spec.program.batches_per_job, sched,
                         steps)
  return (workers, kind, _examples(host_data, order.batches(_real_batches(batches))),
          batches), kind


def _events(spec, sched, order, start, stop, rows, steps, host_data):
  first, last = sched.events_of_steps(start, stop)
  index = np.arange(first, last)
  if rows is not None:  # restarts: a static number of events, padded with no-ops
    index = np.pad(index, (0, rows - index.shape[0]), constant_values=-1)
  xs, kind = _scan_rows(spec, sched, order, index, first, steps, host_data)
  return xs, kind == APPLY


def _blocks(spec, sched, order, start, stop, rows, steps, host_data):
  first, last = sched.events_of_steps(start, stop)
  b0, b1 = np.searchsorted(sched.block_starts, [first, last])
  index, _ = sched.padded_blocks(int(b0), int(b1))  # padded entries hold -1
  width = spec.block_width - spec.block_size  # no-op columns for the worker devices
  index = np.pad(index, ((0, rows - index.shape[0]), (0, width)), constant_values=-1)
  xs, kind = _scan_rows(spec, sched, order, index, first, steps, host_data)
  return xs, (kind == APPLY).ravel()


def _rounds(spec, order, start, stop, host_data, rounds=None):
  g = spec.gradients_per_round
  batches = (np.arange(start, stop)[:, None] * g + np.arange(g)[None, :]).astype(np.int32)
  xs = (_examples(host_data, order.batches(batches[..., None])), batches[..., None])
  if spec.masked_steps:  # rounds shrunk by failures: each round's gradient count
    counts = (np.full(stop - start, g) if rounds is None or rounds.gradients is None
              else rounds.gradients[start:stop])
    xs = (*xs, counts.astype(np.int32))
  return xs, np.ones(stop - start, bool)


def stack(spec, per_replica: list):
  """Per-replica host values stacked on a leading replica axis (none if single)."""
  if spec.single:
    return per_replica[0]
  return jax.tree.map(lambda *xs: np.stack(xs), *per_replica)


def chunk_inputs(spec, schedules, start: int, stop: int, rows: int | None = None, *,
                 orders, host_data=None):
  """Scan inputs and the valid (apply) mask of master steps ``start..stop-1``.

  ``orders``: each replica's :class:`~dana_jax.engine.host_data.DataOrder`;
  ``host_data``: the training :class:`HostData` (its examples are loaded here), or None
  when the arrays are on the device (the chunk receives indices).
  """
  per = []
  for r, order in enumerate(orders):
    order = order if spec.synchronous else _placed(order, schedules[r], spec, r)
    if spec.synchronous:  # rounds need their times only when failures shrink them
      rounds = schedules[r] if len(schedules) > r else None
      per.append(_rounds(spec, order, start, stop, host_data, rounds))
    elif spec.execution == "steps":
      per.append(_events(spec, schedules[r], order, start, stop, rows, spec.job_steps[r],
                         host_data))
    else:
      per.append(_blocks(spec, schedules[r], order, start, stop, rows, spec.job_steps[r],
                         host_data))
  return stack(spec, [p[0] for p in per]), stack(spec, [p[1] for p in per])
