"""DANA (DANA-Zero): one momentum vector per worker and a look-ahead read.

At the master, for the arriving worker k (docs/spec.md §2.6):

    v^k ← γ v^k + d
    θ   ← θ − η v^k

and worker k then reads, instead of θ itself, the look-ahead

    θ̂_k = θ − η γ Σ_i v^i,

an estimate of where θ will be when k's next gradient lands. η is the learning
rate of the step just applied. With one worker and no weight decay the
look-aheads are exactly the iterates of NAG (``optax.trace(nesterov=True)``).

The look-ahead is a pure function of (state, params), like optax's
schedule-free evaluation parameters: :func:`dana_lookahead`.

References:
  Hakimi, Barkai, Gabel, Schuster, "Taming Momentum in a Distributed
  Asynchronous Environment" (arXiv:1907.11612).
  Barkai, Hakimi, Schuster, "Gap-Aware Mitigation of Gradient Staleness",
  ICLR 2020 (arXiv:1909.10802), §5 (DANA-GA).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dana_jax.errors import ConfigError
from dana_jax.transforms._common import float_dtype, learning_rate_at, require_extra_arg
from dana_jax.trees import index_after, set_row


class DanaState(NamedTuple):
  """State of :func:`dana`.

  Attributes:
    count: master steps applied, int32.
    momenta: v^i for every worker, each leaf with a leading [N] axis.
    momentum_sum: Σ_i v^i, kept incrementally.
    last_worker: the worker whose update was applied last (0 before any).
    read_scale: η γ of the step just applied: reads are θ − read_scale · Σ v.
    next_read_scale: η_{t+1} γ: the look-ahead a worker would read *before*
      the next update (DANA-GA measures gaps against it).
  """

  count: jax.Array
  momenta: optax.Updates
  momentum_sum: optax.Updates
  last_worker: jax.Array
  read_scale: jax.Array
  next_read_scale: jax.Array


def dana(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float = 0.9,
    *,
    num_workers: int,
) -> optax.GradientTransformationExtraArgs:
  """The DANA-Zero master update; returns −η v^k as the update.

  Args:
    learning_rate: a float or an optax schedule of the master step.
    momentum: γ.
    num_workers: N, the number of per-worker momentum vectors.

  Extra args:
    worker: int scalar in [0, num_workers), the id of the worker whose
      gradient this is. A Python or numpy integer out of range raises
      ``ValueError``; a traced one is not checked (JAX clamps the index).
    applies: optional boolean scalar: False leaves the state as it was (an
      event that applies nothing: a restart, a failure, padding). Selected
      here on the one row the update reads and writes, so that the [N, …]
      stack is written in place; selecting afterwards (:func:`dana_where`)
      reads the old stack after the write, and XLA:CPU then copies it per
      event (docs/benchmarks.md).
    write_after: optional pytree whose values the row write waits for (for
      :func:`dana_jax.transforms.gap_feedback`: its penalty's new state,
      computed from the stack's old rows; docs/benchmarks.md).

  Returns:
    An ``optax.GradientTransformationExtraArgs``. Compute the parameters a
    worker reads with :func:`dana_lookahead`.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from dana_jax.transforms import dana, dana_lookahead
    >>> tx = dana(learning_rate=0.1, momentum=0.9, num_workers=2)
    >>> params = {"w": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params, worker=1)
    >>> params = optax.apply_updates(params, updates)
    >>> dana_lookahead(state, params)["w"]  # θ − ηγ Σv = −0.1 − 0.09
    Array([-0.19, -0.19], dtype=float32)
  """
  if not isinstance(num_workers, int) or num_workers < 1:
    raise ConfigError(f"num_workers={num_workers!r} is not allowed: need an integer ≥ 1.")

  def init_fn(params):
    dtype = float_dtype(params)  # float32, or float64 for float64 parameters
    zeros = jax.tree.map(jnp.zeros_like, params)
    return DanaState(
        count=jnp.zeros([], jnp.int32),
        momenta=jax.tree.map(lambda p: jnp.zeros((num_workers,) + p.shape, p.dtype), params),
        momentum_sum=zeros,
        last_worker=jnp.zeros([], jnp.int32),
        read_scale=jnp.zeros([], dtype),
        next_read_scale=jnp.asarray(learning_rate_at(learning_rate, 0) * momentum, dtype),
    )

  def update_fn(updates, state, params=None, *, worker=None, applies=None, write_after=None,
                **extra_args):
    del params, extra_args
    worker = require_extra_arg("dana", "worker", worker, "the id of the arriving worker")
    if isinstance(worker, (int, np.integer)) and not 0 <= worker < num_workers:
      raise ConfigError(f"dana: worker={worker} is not allowed: need 0 <= worker < "
                       f"num_workers={num_workers}.")
    worker = jnp.asarray(worker, jnp.int32)
    dtype = state.read_scale.dtype
    lr = jnp.asarray(learning_rate_at(learning_rate, state.count), dtype)
    next_lr = jnp.asarray(learning_rate_at(learning_rate, state.count + 1), dtype)
    old = jax.tree.map(lambda m: m[worker], state.momenta)
    new = jax.tree.map(lambda v, d: momentum * v + d, old, updates)
    total = jax.tree.map(lambda s, a, b: s + (a - b), state.momentum_sum, new, old)
    out = jax.tree.map(lambda v: (-lr * v).astype(v.dtype), new)
    # = worker: the row is overwritten in place only after every reader of its old
    # value (inside scan, XLA:CPU otherwise copies the [N, ...] stack each step).
    slot = index_after(worker, total, out, new, write_after)
    read_scale, next_read_scale = (lr * momentum).astype(dtype), (next_lr * momentum).astype(dtype)
    count = state.count + 1
    if applies is not None:  # an event that may not apply: the state unchanged if not
      pick = lambda a, b: jnp.where(applies, a, b)
      new = jax.tree.map(pick, new, old)  # the row read above: no read of the stack after
      total = jax.tree.map(pick, total, state.momentum_sum)
      count, worker = pick(count, state.count), pick(worker, state.last_worker)
      read_scale = pick(read_scale, state.read_scale)
      next_read_scale = pick(next_read_scale, state.next_read_scale)
    momenta = set_row(state.momenta, slot, new)
    return out, DanaState(count=count, momenta=momenta, momentum_sum=total,
                          last_worker=worker, read_scale=read_scale,
                          next_read_scale=next_read_scale)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def dana_lookahead(state: DanaState, params: optax.Params) -> optax.Params:
  """θ̂ = θ − η γ Σ_i v^i: what a worker reads right after the last update."""
  return jax.tree.map(lambda p, s: p - (state.read_scale * s).astype(p.dtype), params,
                      state.momentum_sum)


def dana_gap_reference(state: DanaState, params: optax.Params) -> optax.Params:
  """θ_t − η_t γ Σ_i v^i: the look-ahead a worker would read before step t's update."""
  return jax.tree.map(lambda p, s: p - (state.next_read_scale * s).astype(p.dtype), params,
                      state.momentum_sum)


def dana_previous_buffer(state: DanaState) -> optax.Updates:
  """The buffer applied at the previous master step: v of the last worker (0 at t = 0)."""
  return jax.tree.map(lambda m: m[state.last_worker], state.momenta)


def dana_where(condition, new: DanaState, old: DanaState) -> DanaState:
  """``new`` where ``condition`` else ``old``, one update apart, in O(params).

  The update wrote one row of the per-worker stack (``new.last_worker``); only
  that row is selected, so no [N, …] select (or copy) is made.
  """
  pick = lambda a, b: jnp.where(condition, a, b)
  row = new.last_worker
  kept = jax.tree.map(lambda n, o: pick(n[row], o[row]), new.momenta, old.momenta)
  return DanaState(count=pick(new.count, old.count),
                   momenta=set_row(new.momenta, row, kept),
                   momentum_sum=jax.tree.map(pick, new.momentum_sum, old.momentum_sum),
                   last_worker=pick(new.last_worker, old.last_worker),
                   read_scale=pick(new.read_scale, old.read_scale),
                   next_read_scale=pick(new.next_read_scale, old.next_read_scale))
