"""Which data each worker sees (docs/spec.md §8.4).

A placement gives every worker its *partition* of the training set, once per run seed,
from the training labels alone; worker k then reads its own stream of batches
(:class:`WorkerDataOrder`). The default, :class:`GlobalData`, is the one global stream of
§1 (``dana_jax.engine.host_data.DataOrder``).

Partitions (sorted example indices, one array per worker), all drawn from
``rng = np.random.default_rng([seed, 0xDA7B])``:

* ``shards``: π = rng.permutation(n); worker k gets π[k·m : (k+1)·m] with m = ⌊n / N⌋
  (equal shards; the last n − N·m examples of π are in no shard).
* ``dirichlet`` (α; Hsu, Qi & Brown 2019, arXiv 1909.06335): for each class y in ascending
  order, its examples are permuted (rng.permutation) and shares q ~ Dirichlet(α·1_N) drawn
  (rng.dirichlet); worker k gets positions [⌊n_y·Q_(k−1)⌋, ⌊n_y·Q_k⌋) of that permutation,
  Q_k = q_0 + … + q_k (Q_(N−1) taken as exactly 1). α = inf is ``shards``.
* ``labels`` (c classes per worker): with the C classes in ascending order, worker k holds
  classes (k·c + j) mod C, j < c; for each class in ascending order its examples are
  permuted (rng.permutation) and split by ``np.array_split`` over the workers holding it, in
  ascending worker order (a class held by no worker, when N·c < C, is used by none).

A worker whose partition has fewer than B examples is a ConfigError.

Per-worker stream: worker k with n_k examples makes ⌊n_k / B⌋ batches per pass; its j-th
batch is pass p = j // ⌊n_k / B⌋ and position i = j mod ⌊n_k / B⌋:
``part_k[rng([seed, 0xDA7B, k, p]).permutation(n_k)[i·B : (i+1)·B]]``.
``shards`` with N = 1 uses the global order instead (so that it equals ``global`` bit for
bit, docs/spec.md §8.4): its j-th batch is batch j of §1's stream.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from dana_jax.errors import ConfigError

_SALT = 0xDA7B


def _check_workers(name: str, num_workers) -> None:
  if not isinstance(num_workers, (int, np.integer)) or num_workers < 1:
    raise ConfigError(f"data_placement={name!r}: num_workers={num_workers!r}; "
                      "expected an integer >= 1")


def _checked(parts: list[np.ndarray], what: str, num_workers: int,
             batch_size: int) -> list[np.ndarray]:
  sizes = [len(p) for p in parts]
  small = [k for k, s in enumerate(sizes) if s < batch_size]
  if small:
    k = small[0]
    raise ConfigError(f"data_placement: {what}, N={num_workers}, B={batch_size}: worker {k} "
                      f"gets {sizes[k]} examples, fewer than B; expected every worker >= B "
                      "(fewer workers, a smaller batch or a larger alpha)")
  return [np.sort(p).astype(np.int64) for p in parts]


@dataclasses.dataclass(frozen=True)
class GlobalData:
  """One global data stream for every worker (docs/spec.md §1; the default)."""

  is_default: ClassVar[bool] = True

  def validate(self, num_workers: int) -> None:
    _check_workers("global", num_workers)

  def partition(self, labels, num_workers: int, batch_size: int, seed: int):
    """None: every worker reads the global stream (``host_data.DataOrder``)."""
    del labels, num_workers, batch_size, seed
    return None


@dataclasses.dataclass(frozen=True)
class Shards:
  """The training set split once per run seed into N equal random shards (§8.4)."""

  is_default: ClassVar[bool] = False

  def validate(self, num_workers: int) -> None:
    _check_workers("shards", num_workers)

  def partition(self, labels, num_workers: int, batch_size: int, seed: int
                ) -> list[np.ndarray]:
    """Worker k's examples: π[k·m : (k+1)·m], π = rng([seed, 0xDA7B]).permutation(n),
    m = ⌊n / N⌋ (the remainder of π is in no shard)."""
    n = len(labels)
    m = n // num_workers
    perm = np.random.default_rng([int(seed), _SALT]).permutation(n)
    parts = [perm[k * m:(k + 1) * m] for k in range(num_workers)]
    return _checked(parts, "shards", num_workers, batch_size)


@dataclasses.dataclass(frozen=True)
class Dirichlet:
  """Label shares per worker ~ Dirichlet(α·1) for every class (Hsu, Qi & Brown 2019).

  Args:
    alpha: concentration α > 0; small α: each worker sees few classes; ``inf``: ``shards``.

  References:
    Hsu, Qi, Brown, *Measuring the effects of non-identical data distribution for
    federated visual classification*, arXiv 1909.06335 (2019).
  """

  alpha: float = 1.0
  is_default: ClassVar[bool] = False

  def __post_init__(self):
    a = self.alpha
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not (a > 0):
      raise ConfigError(f"data_placement 'dirichlet': alpha={a!r}; expected a number > 0 "
                        "(inf: equal random shards)")

  def validate(self, num_workers: int) -> None:
    _check_workers("dirichlet", num_workers)

  def partition(self, labels, num_workers: int, batch_size: int, seed: int
                ) -> list[np.ndarray]:
    """Per class y (ascending): perm_y = rng.permutation(examples of y), q ~ Dirichlet(α·1);
    worker k gets perm_y[⌊n_y Q_(k−1)⌋ : ⌊n_y Q_k⌋], Q the cumulative shares."""
    if math.isinf(self.alpha):
      try:
        return Shards().partition(labels, num_workers, batch_size, seed)
      except ConfigError as e:
        raise ConfigError(str(e).replace("shards,", f"dirichlet alpha={self.alpha},")) from None
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), _SALT])
    pieces: list[list[np.ndarray]] = [[] for _ in range(num_workers)]
    for y in np.unique(labels):
      perm = rng.permutation(np.flatnonzero(labels == y))
      shares = rng.dirichlet(np.full(num_workers, float(self.alpha)))
      cuts = (np.cumsum(shares)[:-1] * len(perm)).astype(np.int64)
      for k, piece in enumerate(np.split(perm, cuts)):
        pieces[k].append(piece)
    parts = [np.concatenate(p) for p in pieces]
    return _checked(parts, f"dirichlet alpha={self.alpha}", num_workers, batch_size)


@dataclasses.dataclass(frozen=True)
class Labels:
  """Each worker holds ``classes_per_worker`` classes (worker k: (k·c + j) mod C, j < c).

  Args:
    classes_per_worker: c >= 1 (at most the number of classes C).
  """

  classes_per_worker: int = 2
  is_default: ClassVar[bool] = False

  def __post_init__(self):
    c = self.classes_per_worker
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
      raise ConfigError(f"data_placement 'labels': classes_per_worker={c!r}; "
                        "expected an integer >= 1")

  def validate(self, num_workers: int) -> None:
    _check_workers("labels", num_workers)

  def classes(self, num_workers: int, num_classes: int) -> np.ndarray:
    """Class positions [N, c] held by each worker: (k·c + j) mod C."""
    c = int(self.classes_per_worker)
    return (np.arange(num_workers)[:, None] * c + np.arange(c)) % num_classes

  def partition(self, labels, num_workers: int, batch_size: int, seed: int
                ) -> list[np.ndarray]:
    """Per class (ascending): its permuted examples ``np.array_split`` over its holders."""
    labels = np.asarray(labels)
    values = np.unique(labels)
    c = int(self.classes_per_worker)
    if c > len(values):
      raise ConfigError(f"data_placement 'labels': classes_per_worker={c}; expected at most "
                        f"the {len(values)} classes of the training set")
    held = self.classes(num_workers, len(values))
    rng = np.random.default_rng([int(seed), _SALT])
    pieces: list[list[np.ndarray]] = [[] for _ in range(num_workers)]
    for i, y in enumerate(values):
      perm = rng.permutation(np.flatnonzero(labels == y))
      holders = np.flatnonzero((held == i).any(axis=1))
      for k, piece in zip(holders, np.array_split(perm, max(len(holders), 1)), strict=False):
        pieces[k].append(piece)
    parts = [np.concatenate(p) if p else np.zeros(0, np.int64) for p in pieces]
    return _checked(parts, f"labels classes_per_worker={c}", num_workers, batch_size)


PLACEMENTS = {"global": GlobalData, "shards": Shards, "dirichlet": Dirichlet, "labels": Labels}


class WorkerDataOrder:
  """Per-worker data streams (module docstring): ``batches(workers, local)`` gives worker
  w's batch number j (its own count) as example indices [..., B].

  Args:
    parts: each worker's partition (sorted example indices), or None for the global stream.
    num_examples: |train| (for the global order of ``shards`` with N = 1).
    batch_size: B.
    seed: the run's data seed.
    global_order: use §1's stream for worker 0 (``shards`` with N = 1).
  """

  def __init__(self, parts, num_examples: int, batch_size: int, seed: int,
               global_order: bool = False):
    self.parts, self.batch_size, self.seed = parts, int(batch_size), int(seed)
    self.num_examples = int(num_examples)
    self.global_order = global_order or parts is None
    self._cache: dict[tuple[int, int], np.ndarray] = {}
    if self.global_order:
      from dana_jax.engine.host_data import DataOrder
      self._global = DataOrder(self.num_examples, self.batch_size, self.seed)

  def bound(self, sched, num_workers: int, per_job: int, lengths=None):
    """This order read through ``sched`` (:class:`ScheduledOrder`; the last one kept);
    itself for the global order (its batch numbers are §1's)."""
    if self.global_order:
      return self
    key = (id(sched), num_workers, per_job, None if lengths is None else tuple(lengths))
    if getattr(self, "_bound_key", None) != key:
      self._bound_key, self._bound_sched = key, sched  # the schedule is kept: its id stays
      self._bound = ScheduledOrder(self, sched, num_workers, per_job, lengths)
    return self._bound

  @property
  def num_workers(self) -> int | None:
    return None if self.parts is None else len(self.parts)

  def _pass(self, worker: int, p: int) -> np.ndarray:
    key = (worker, p)
    if key not in self._cache:
      if len(self._cache) > 64:
        self._cache.pop(next(iter(self._cache)))
      part = self.parts[worker]
      per_pass = len(part) // self.batch_size
      perm = np.random.default_rng([self.seed, _SALT, worker, p]).permutation(len(part))
      self._cache[key] = part[perm[:per_pass * self.batch_size]].reshape(per_pass,
                                                                          self.batch_size)
    return self._cache[key]

  def batches(self, workers, local=None) -> np.ndarray:
    """Example indices [*S, B] of worker ``workers[i]``'s batch ``local[i]`` (shapes S);
    with one argument, worker 0's batches ``workers`` (as ``DataOrder.batches``)."""
    if local is None:
      if not self.global_order:
        raise ValueError("WorkerDataOrder.batches: a per-worker stream needs (workers, local)"
                         "; read global batch numbers through .bound(schedule, ...)")
      workers, local = 0, workers
    workers, local = np.broadcast_arrays(np.asarray(workers, np.int64),
                                         np.asarray(local, np.int64))
    if self.global_order:
      return self._global.batches(local)
    out = np.empty(workers.shape + (self.batch_size,), dtype=np.int32)
    for k in np.unique(workers):
      sel = workers == k
      per_pass = len(self.parts[int(k)]) // self.batch_size
      j = local[sel]
      passes = j // per_pass
      rows = np.empty(j.shape + (self.batch_size,), np.int32)
      for p in np.unique(passes):
        at = passes == p
        rows[at] = self._pass(int(k), int(p))[j[at] % per_pass]
      out[sel] = rows
    return out


def worker_data_order(placement, labels, num_workers: int, batch_size: int,
                      seed: int) -> WorkerDataOrder | None:
  """The per-worker streams of ``placement`` (None for the global default)."""
  if getattr(placement, "is_default", True):
    return None
  placement.validate(num_workers)
  parts = placement.partition(labels, num_workers, batch_size, seed)
  single_shard = num_workers == 1 and (isinstance(placement, Shards) or (
      isinstance(placement, Dirichlet) and math.isinf(placement.alpha)))
  return WorkerDataOrder(parts, len(labels), batch_size, seed, global_order=single_shard)


def job_owners(event_kind, event_worker, num_workers: int):
  """Worker w(d) and its job count c(d) of every dispatch number d (docs/spec.md §1).

  Worker k's first dispatch is k; then one per APPLY or DISCARD event, for that event's
  worker, in event order. c(d) = #{d' < d : w(d') = w(d)}: dispatch d is w(d)'s c(d)-th job,
  whose H batches are w(d)'s local batches c·H … c·H + H − 1.

  Returns:
    (owner [D], count [D]) int64 over the D dispatches made.
  """
  from dana_jax.schedule import APPLY, DISCARD
  kind = np.asarray(event_kind)
  made = (kind == APPLY) | (kind == DISCARD)
  owner = np.concatenate([np.arange(num_workers),
                          np.asarray(event_worker, np.int64)[made]]).astype(np.int64)
  order = np.argsort(owner, kind="stable")
  sorted_owner = owner[order]
  starts = np.searchsorted(sorted_owner, sorted_owner, side="left")
  count = np.empty_like(owner)
  count[order] = np.arange(len(owner)) - starts
  return owner, count


class ScheduledOrder:
  """A :class:`WorkerDataOrder` read through one replica's schedule: ``batches(b)`` takes the
  engine's global batch numbers b (dispatch d's h-th batch is o_d + h, o_d = Σ_(d'<d) H_(d'))
  and gives worker w(d)'s local batch l_d + h, l_d = Σ_(d'<d, w(d')=w(d)) H_(d')
  (:func:`job_owners`). ``lengths``: H per worker (DyLU) or None (one H for all)."""

  def __init__(self, order: WorkerDataOrder, sched, num_workers: int, per_job: int,
               lengths=None):
    self.order = order
    owner, _ = job_owners(sched.event_kind, sched.event_worker, num_workers)
    length = (np.full(len(owner), per_job, np.int64) if lengths is None
              else np.asarray(lengths, np.int64)[owner])
    self.owner, self.offset = owner, np.concatenate([[0], np.cumsum(length)[:-1]])
    local = np.zeros(len(owner), np.int64)
    for k in range(num_workers):
      sel = owner == k
      local[sel] = np.concatenate([[0], np.cumsum(length[sel])[:-1]])
    self.local = local

  def batches(self, batches) -> np.ndarray:
    """Example indices [*S, B] of global batch numbers ``batches`` (shape S)."""
    b = np.asarray(batches, np.int64)
    d = np.searchsorted(self.offset, b, side="right") - 1
    return self.order.batches(self.owner[d], self.local[d] + b - self.offset[d])
