"""Small data sets that need no download (the experiments add tfds data sets)."""

from __future__ import annotations

import numpy as np


def digits(test_fraction: float = 1 / 6, seed: int = 0):
  """scikit-learn's 8×8 digits (1,797 images), scaled to [0, 1], split train/test.

  Returns:
    ``(train_x, train_y, test_x, test_y)``; images [n, 8, 8] float32, labels int32.
  """
  from sklearn.datasets import load_digits  # lazy: the library imports no heavy deps

  bunch = load_digits()
  x = (bunch.images / 16.0).astype(np.float32)
  y = bunch.target.astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(y))
  num_test = int(round(len(y) * test_fraction))
  test, train = order[:num_test], order[num_test:]
  return x[train], y[train], x[test], y[test]
