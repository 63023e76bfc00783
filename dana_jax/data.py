"""Small data sets that need no download (the experiments add tfds data sets)."""

from __future__ import annotations

import numpy as np

from dana_jax.errors import ConfigError


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


def byte_tokens(text: str) -> np.ndarray:
  """Byte-level tokens of ``text`` (its UTF-8 bytes, 0 … 255) as uint8 (one byte per
  token, so a large corpus is not copied four times over): nothing to train or
  download to tokenize. :func:`windows` makes the int32 examples."""
  return np.frombuffer(text.encode("utf-8"), np.uint8)


def windows(tokens, length: int):
  """Non-overlapping windows of a token stream for next-token prediction.

  Window k is ``inputs[k] = s[kT : (k+1)T]`` with ``labels[k] = s[kT+1 : (k+1)T+1]``
  (the next token at each position; a label may be the next window's first
  input). These are the examples of the data stream (docs/spec.md §1): each epoch is a
  fresh permutation of the windows. Returns ``(inputs, labels)``, int32 [n, T],
  n = (len(s) − 1) // T.
  """
  tokens = np.asarray(tokens)
  if not (isinstance(length, (int, np.integer)) and length >= 1):
    raise ConfigError(f"window={length!r} is not allowed: need an integer ≥ 1.")
  count = (tokens.size - 1) // length
  if count < 1:
    raise ConfigError(f"window={length} is not allowed: the stream has {tokens.size} tokens, "
                     "fewer than one window and its next token.")
  inputs = tokens[:count * length].reshape(count, length)
  labels = tokens[1:count * length + 1].reshape(count, length)
  return inputs.astype(np.int32), labels.astype(np.int32)
