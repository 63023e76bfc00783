"""Where a simulation's batches come from: the global data stream (docs/spec.md §1) and
training sets kept on the host."""

from __future__ import annotations

import numpy as np

from dana_jax._checks import require as _require


class DataOrder:
  """The global data stream of spec §1, computed on the host.

  Each epoch is a fresh seeded permutation of the training set cut into
  ``floor(n / B)`` batches of exactly B; dispatch m takes batch m of the
  stream.
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, int(seed)
    self.batches_per_epoch = num_examples // batch_size
    self._cache: dict[int, np.ndarray] = {}

  def _epoch(self, epoch: int) -> np.ndarray:
    if epoch not in self._cache:
      if len(self._cache) > 4:
        self._cache.pop(min(self._cache))
      rng = np.random.default_rng([self.seed, 0xDA7A, epoch])
      perm = rng.permutation(self.num_examples)[: self.batches_per_epoch * self.batch_size]
      self._cache[epoch] = perm.reshape(self.batches_per_epoch, self.batch_size)
    return self._cache[epoch]

  def batches(self, dispatches: np.ndarray) -> np.ndarray:
    """Example indices [len(dispatches), B] of the given dispatch numbers."""
    dispatches = np.asarray(dispatches, dtype=np.int64)
    out = np.empty(dispatches.shape + (self.batch_size,), dtype=np.int32)
    epochs = dispatches // self.batches_per_epoch
    for e in np.unique(epochs):
      sel = epochs == e
      out[sel] = self._epoch(int(e))[dispatches[sel] % self.batches_per_epoch]
    return out


class HostData:
  """A data set that stays on the host; the engine asks it for batches by index.

  For data that does not fit in device memory (ImageNet). Subclasses define
  ``__len__`` and :meth:`load`; the engine calls ``load`` with each chunk's
  example indices (the same global data order as for arrays, spec §1) and
  passes the result into the compiled chunk, so a run gives the same result
  whether its data is an array or a :class:`HostData` holding that array.
  """

  def __len__(self) -> int:
    raise NotImplementedError

  def load(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Examples ``indices`` (any shape S) as ``(inputs [*S, ...], labels [*S])``."""
    raise NotImplementedError

  def example_nbytes(self) -> int:
    """Bytes of one example's inputs as :meth:`load` returns them."""
    inputs, _ = self.load(np.zeros([1], np.int64))
    return int(inputs.nbytes)


class ArrayData(HostData):
  """Host-resident numpy arrays as :class:`HostData` (tests, or data kept off the device)."""

  def __init__(self, inputs, labels):
    self.inputs, self.labels = np.asarray(inputs), np.asarray(labels)
    _require(self.labels.shape[:1] == self.inputs.shape[:1], "labels", self.labels.shape,
             f"need one label per example ({self.inputs.shape[0]})")

  def __len__(self):
    return self.inputs.shape[0]

  def load(self, indices):
    return self.inputs[indices], self.labels[indices]


# Host bytes of training inputs per chunk when HostData chooses the chunk length.
HOST_CHUNK_BYTES = 1 << 30
