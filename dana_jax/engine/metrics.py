"""Per-step metrics, declared once: what a master step reports and how a chunk reduces it.

Each :class:`Metric` names a value, says how a step computes it from the
:class:`Event` it saw (an asynchronous apply event or a synchronous round) and how
a chunk reduces the values of its valid (apply) events to the summary entries of
every replica's record (``result.history[i]["replicas"][r]``). The step functions
(``engine.step``) compute every metric of :data:`METRICS`, the chunk summary
(:func:`summarize`) reduces every one of them, and nothing else lists them: a new
per-step metric is one entry here.

:func:`metric_names` lists the entries a chunk's record of one replica can hold,
the host's per-chunk entries (``time/simulated``, ``jobs/cancelled``) included;
evaluation adds ``test/<name>`` and ``train/<name>`` of the model's metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp


class Event(NamedTuple):
  """What one master step knows when its metrics are computed.

  Attributes:
    step: t, the master steps applied before this one (int32).
    lag: τ = t − r_k of the applied gradient (0 for a synchronous round).
    gap_rms: the RMS of the gap Δ between the reference and what the worker read
      (docs/spec.md §2.8; 0 for a synchronous round).
    loss: the job's mean training loss (a round's: the mean over its G gradients).
    learning_rate: η at step t.
    diagnostics: the optimizer's statistics of this update
      (``dana_jax.transforms.diagnostics``; names declared below).
    params: θ after the update.
    opt_state: the optimizer state after the update.
    worker: the arriving worker k (0 for a round).
  """

  step: Any
  lag: Any
  gap_rms: Any
  loss: Any
  learning_rate: Any
  diagnostics: dict
  params: Any
  opt_state: Any
  worker: Any


class Chunk(NamedTuple):
  """What a reduction sees of a chunk: which scan rows are valid (apply) events."""

  valid: Any
  num_workers: int

  def mean(self, x):
    """The mean of ``x`` over the valid events."""
    weight = self.valid.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(weight), 1.0)
    return jnp.sum(jnp.where(self.valid, x, 0)) / count.astype(jnp.result_type(x, jnp.float32))

  def last(self, x):
    """``x`` at the last valid event."""
    return x[jnp.argmax(jnp.cumsum(self.valid.astype(jnp.float32)))]


def mean(name: str, values, chunk: Chunk) -> dict:
  """``{name: mean over the chunk's valid events}``."""
  return {name: chunk.mean(values)}


def last(name: str, values, chunk: Chunk) -> dict:
  """``{name: the value at the chunk's last valid event}``."""
  return {name: chunk.last(values)}


def lag_summary(name: str, values, chunk: Chunk) -> dict:
  """The lag's mean, max and histogram over bins 0 … 2N − 1 and ≥ 2N."""
  valid = chunk.valid
  bins = 2 * chunk.num_workers + 1
  return {f"{name}/mean": chunk.mean(values.astype(jnp.float32)),
          f"{name}/max": jnp.max(jnp.where(valid, values, 0)),
          f"{name}/hist": jnp.zeros([bins], jnp.int32).at[jnp.minimum(values, bins - 1)].add(
              valid.astype(jnp.int32))}


@dataclasses.dataclass(frozen=True)
class Metric:
  """One per-step metric.

  Attributes:
    name: its name (and the summary's, unless ``reduce`` names its own entries).
    compute: ``Event -> value`` (a traced scalar), or None when this run has no such
      value (e.g. no penalty statistics for ASGD): the metric is then left out.
    reduce: ``(name, values [events], Chunk) -> {summary name: value}``
      (:func:`mean`, :func:`last`, :func:`lag_summary`, or any function of that form).
    outputs: the summary names ``reduce`` gives (default: ``(name,)``).
    doc: what it measures, in words.
  """

  name: str
  compute: Callable[[Event], Any]
  reduce: Callable[[str, Any, Chunk], dict] = mean
  outputs: tuple[str, ...] | None = None
  doc: str = ""

  @property
  def summary_names(self) -> tuple[str, ...]:
    """The entries this metric adds to a chunk's summary."""
    return self.outputs if self.outputs is not None else (self.name,)


def _diagnostic(name: str) -> Callable[[Event], Any]:
  return lambda event: event.diagnostics.get(name)


METRICS: tuple[Metric, ...] = (
    Metric("lag", lambda e: e.lag, lag_summary, ("lag/mean", "lag/max", "lag/hist"),
           "the applied gradient's staleness τ = t − r_k (docs/spec.md §1)"),
    Metric("gap/rms", lambda e: e.gap_rms, doc="RMS of the gap Δ (docs/spec.md §2.8)"),
    Metric("loss/train", lambda e: e.loss, doc="the applied jobs' mean training loss"),
    Metric("learning_rate", lambda e: e.learning_rate, last, doc="η at the chunk's last step"),
    Metric("gap/normalized", _diagnostic("gap/normalized"),
           doc="Gap-Aware's mean |Δ| / C (docs/spec.md §2.4)"),
    Metric("penalty/mean", _diagnostic("penalty/mean"),
           doc="the mean penalty: GA's G, SA's divisor, the delay rule's 1 / factor"),
)

# Per-chunk entries the host adds to every replica's record (dana_jax.simulate).
CHUNK_ENTRIES = ("time/simulated", "jobs/cancelled")


def compute(metrics, event: Event) -> dict:
  """The values of ``metrics`` at one event (those a run has), by name. Every diagnostic
  the optimizer reports must be declared (a metric whose ``compute`` reads it)."""
  declared = {m.name for m in metrics}
  unknown = sorted(set(event.diagnostics) - declared)
  if unknown:
    raise ValueError(f"optimizer diagnostics {unknown} are not declared in "
                     "dana_jax.engine.metrics.METRICS")
  out = {}
  for metric in metrics:
    value = metric.compute(event)
    if value is not None:
      out[metric.name] = value
  return out


def summarize(metrics, values: dict, valid, num_workers: int) -> dict:
  """Per-chunk entries of per-event ``values`` over the valid (apply) events: each
  declared metric's ``reduce``, and ``nonfinite`` (a training loss not finite)."""
  chunk = Chunk(valid, num_workers)
  out = {}
  for metric in metrics:
    if metric.name in values:
      out.update(metric.reduce(metric.name, values[metric.name], chunk))
  out["nonfinite"] = ~jnp.all(jnp.isfinite(jnp.where(valid, values["loss/train"], 0.0)))
  return out


def metric_names(metrics=None) -> tuple[str, ...]:
  """Every entry a replica's chunk record can hold from ``metrics`` (default
  :data:`METRICS`) and the host (not evaluation's ``test/…``, ``train/…``, nor the flag
  ``nonfinite``); a run holds those that apply to it."""
  metrics = METRICS if metrics is None else metrics
  names = [n for m in metrics for n in m.summary_names]
  return tuple(names) + CHUNK_ENTRIES


__all__ = ["CHUNK_ENTRIES", "METRICS", "Chunk", "Event", "Metric", "compute", "lag_summary",
           "last", "mean", "summarize", "metric_names"]
