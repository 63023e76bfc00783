"""Worker programs: what a worker computes from the parameters it read.

A program sees one job: the parameters θ̂_k the worker read, its own
per-worker state (if any), and the job's H batches of the stream. It returns
what the worker sends — a gradient, or any update direction the master's
optimizer treats as one — the BatchNorm contributions of its H batches (the
master folds them in order when the job arrives), its mean training loss, and
its new per-worker state. The engine stays blind to which program runs: it
stores the per-worker state as an [N, …] stack, gives each job its row, and
writes the row back.

* :class:`Gradient`: one mini-batch gradient (the GA paper's workers).
* :class:`LocalSteps`: H inner steps of an optax optimizer on H consecutive
  batches, sending the pseudo-gradient θ̂_k − θ_k^(H) (asynchronous local SGD,
  docs/spec.md §6.5); the inner optimizer state persists across a worker's jobs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dana_jax._checks import is_int
from dana_jax._checks import require as _require


@dataclasses.dataclass(frozen=True)
class Gradient:
  """One gradient of the model's loss at what the worker read, on one batch."""

  batches_per_job: int = 1

  def init(self, params) -> Any:
    del params
    return None

  def steps_per_worker(self, timing, num_workers: int, seed: int) -> None:
    del timing, num_workers, seed
    return None  # every job is one batch

  def run(self, model, params, worker_state, inputs, labels, keys, read_step, hp=None,
          valid=None):
    """``inputs`` [1, B, …], ``labels`` [1, B], ``keys`` [1]: returns
    ``(gradient, contributions [1, …], loss, worker_state)``. ``hp``: the
    replica's hyperparameters; ``valid``: which of the job's batches it runs
    (always its one batch here). Both unused."""
    del read_step, hp, valid
    (loss, stats), grads = jax.value_and_grad(model.loss, has_aux=True)(
        params, inputs[0], labels[0], keys[0])
    return grads, jax.tree.map(lambda c: c[None], stats), loss, worker_state


@dataclasses.dataclass(frozen=True, eq=False)
class LocalSteps:
  """H inner optimizer steps per job; sends θ̂_k − θ_k^(H) (spec §6.5).

  Args:
    num_steps: H ≥ 1, inner steps (and batches) per job.
    inner: ``read_step -> optax.GradientTransformation``, the inner optimizer
      for a job read at master step ``read_step`` (so its learning rate can
      follow a schedule of the read step), or one transformation for every job,
      or an :class:`InnerOptimizer` (which also takes the replica's weight
      decay). Its state persists across a worker's jobs (zero at the start).
    dynamic: DyLU of Liu et al. (arXiv 2401.09135): worker i runs
      H_i = max(1, ⌊H · v_i / max_j v_j + ½⌋) steps (rounded half up), v_i = 1 / (its mean batch
      time under the replica's timing seed), so all jobs take about as long; its
      dispatch takes H_i batches of the stream and its job H_i batch-time draws.
      The job is still a scan of H steps, those past H_i masked (θ, the inner
      state and the statistics they would fold are kept).
    reset_on_rejoin: a worker that rejoins after a failure (docs/spec.md §8.2) starts
      from a fresh inner state (zero moments) instead of keeping its own (a machine
      restoring its local checkpoint, the default).
  """

  num_steps: int
  inner: Any
  dynamic: bool = False
  reset_on_rejoin: bool = False

  def __post_init__(self):
    _require(is_int(self.num_steps, 1), "local_steps", self.num_steps, "need an integer ≥ 1")
    _require(isinstance(self.dynamic, bool), "algorithm_options.dynamic_local_steps",
             self.dynamic, "need True or False")
    _require(isinstance(self.reset_on_rejoin, bool), "algorithm_options.reset_on_rejoin",
             self.reset_on_rejoin, "need True or False")

  def __repr__(self):  # what a checkpoint's fingerprint records (inner: by its type)
    reset = ", reset_on_rejoin=True" if self.reset_on_rejoin else ""
    return (f"LocalSteps(num_steps={self.num_steps}, inner={type(self.inner).__name__}, "
            f"dynamic={self.dynamic}{reset})")

  @property
  def batches_per_job(self) -> int:
    """H: the batches (scan length) of the longest job."""
    return int(self.num_steps)

  def steps_per_worker(self, timing, num_workers: int, seed: int) -> np.ndarray | None:
    """H_i of every worker [N] under timing seed ``seed``; None: every job takes H."""
    if not self.dynamic:
      return None
    means = np.asarray(timing.worker_means(num_workers, seed), np.float64)
    speed = 1.0 / means
    return np.maximum(1, np.floor(self.num_steps * speed / speed.max() + 0.5)).astype(np.int64)

  def _tx(self, read_step, hp=None) -> optax.GradientTransformation:
    if isinstance(self.inner, optax.GradientTransformation):
      return self.inner
    if isinstance(self.inner, InnerOptimizer):
      return self.inner.at(read_step, hp)
    return self.inner(read_step)

  def init(self, params):
    return self._tx(jnp.zeros([], jnp.int32)).init(params)

  def run(self, model, params, worker_state, inputs, labels, keys, read_step, hp=None,
          valid=None):
    """``valid`` [H] (DyLU): the steps this job runs; the others leave θ and the inner
    state as they are, add nothing to the loss, and their statistics are masked."""
    tx = self._tx(read_step, hp)
    if valid is None:
      valid = jnp.ones(keys.shape[:1], bool)

    def inner(carry, batch):
      theta, opt_state = carry
      x, y, key, run = batch
      (loss, stats), grads = jax.value_and_grad(model.loss, has_aux=True)(theta, x, y, key)
      updates, new_state = tx.update(grads, opt_state, theta)
      new = (optax.apply_updates(theta, updates), new_state)
      if self.dynamic:
        new = jax.tree.map(lambda a, b: jnp.where(run, a, b), new, (theta, opt_state))
      return new, (stats, loss)

    (theta, worker_state), (stats, losses) = jax.lax.scan(
        inner, (params, worker_state), (inputs, labels, keys, valid))
    pseudo = jax.tree.map(lambda a, b: a - b, params, theta)
    if not self.dynamic:
      return pseudo, stats, jnp.mean(losses), worker_state
    loss = jnp.sum(jnp.where(valid, losses, 0)) / jnp.sum(valid)
    return pseudo, MaskedStats(stats, valid), loss, worker_state


def batches_per_job(program, timing, num_workers: int, seeds) -> int | float:
  """The expected stream batches of one job: H, or with DyLU, per replica (timing seed),
  Σ_i v_i / Σ_i (v_i / H_i): worker i finishes a job every H_i / v_i time units, so it
  makes a fraction (v_i / H_i) / Σ_j (v_j / H_j) of the apply events, each of H_i
  batches; averaged over the replicas (they share one count of steps per epoch)."""
  if not getattr(program, "dynamic", False):
    return program.batches_per_job
  per_replica = []
  for seed in seeds:
    speed = 1.0 / np.asarray(timing.worker_means(num_workers, seed), np.float64)
    steps = program.steps_per_worker(timing, num_workers, seed)
    per_replica.append(speed.sum() / (speed / steps).sum())
  mean = float(np.mean(per_replica))
  return int(mean) if mean.is_integer() else mean


class MaskedStats(NamedTuple):
  """A job's statistics contributions [H, …] of which only ``valid`` [H] are folded."""
  values: Any
  valid: Any


INNER_OPTIMIZERS = ("adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class InnerOptimizer:
  """The inner optimizer of asynchronous local SGD by name (spec §6.5).

  ``adamw``: optax's AdamW (b1 0.9, b2 0.999, ε 1e-8) with decoupled weight
  decay λ_in = the replica's ``weight_decay`` hyperparameter; ``sgd``: plain
  SGD (no momentum, no weight decay). ``learning_rate``: a float, or a
  schedule of the job's read step.
  """

  name: str = "adamw"
  learning_rate: Any = 1e-3

  def __post_init__(self):
    _require(self.name in INNER_OPTIMIZERS, "algorithm_options.inner", self.name,
             f"choose one of {list(INNER_OPTIMIZERS)}")
    _require(callable(self.learning_rate) or (
        isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0),
        "algorithm_options.inner_learning_rate", self.learning_rate,
        "need a number > 0 or a schedule of the read step")

  def at(self, read_step, hp=None) -> optax.GradientTransformation:
    lr = self.learning_rate(read_step) if callable(self.learning_rate) else self.learning_rate
    if self.name == "sgd":
      return optax.sgd(lr)
    weight_decay = 0.0 if hp is None else hp["weight_decay"]
    return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
