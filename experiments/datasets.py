"""A sweep's data: what it trains and evaluates on, loaded from ``config.dataset``.

Small sets (digits, the tfds image sets) are standardized in memory; text corpora
become byte-level next-token windows; ImageNet stays on the host and is read
batch by batch (:mod:`experiments.input_pipeline`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dana_jax import data
from experiments import registry, validate


class Dataset(NamedTuple):
  """What a sweep trains and evaluates on; inputs are arrays or host data (ImageNet)."""

  train_inputs: Any  # array [n, ...] or a dana_jax.HostData
  train_labels: Any  # array [n], or None with HostData
  eval_data: Any  # (inputs, labels) or a HostData
  train_eval_data: Any  # the same, a subset of the training set
  num_classes: int
  input_shape: tuple  # what the model sees (after augmentation)
  source: Any = None  # where the data came from (files, sizes), for rundir.data_identity

  @property
  def num_train(self) -> int:
    return len(self.train_inputs)


def load_data(config) -> Dataset:
  """The sweep's data: small sets standardized in memory; ImageNet on the host."""
  train_eval = config.get("train_eval_examples", None)
  if config.dataset == "imagenet2012":
    from experiments import imagenet_data

    train, validation, train_subset = imagenet_data.imagenet(
        data_dir=config.get("data_dir"), stored_size=config.stored_size,
        image_size=config.image_size, train_eval_examples=train_eval or 10_000,
        eval_examples=config.get("eval_examples"))
    return Dataset(train, None, validation, train_subset, 1000,
                   (config.image_size, config.image_size, 3))
  if config.dataset in registry.TEXT_DATASETS:
    return _text_windows(config, train_eval)
  if config.dataset == "digits":
    tx, ty, vx, vy = data.digits()
    classes = 10
  else:
    from experiments import input_pipeline

    tx, ty, vx, vy = input_pipeline.load(config.dataset, data_dir=config.get("data_dir"),
                                         idx_dir=config.get("idx_dir"))
    tx, vx = tx.astype(np.float32) / 255.0, vx.astype(np.float32) / 255.0
    mean = tx.mean(axis=(0, 1, 2), keepdims=True)
    std = tx.std(axis=(0, 1, 2), keepdims=True)
    tx, vx = (tx - mean) / std, (vx - mean) / std
    classes = input_pipeline.NUM_CLASSES[config.dataset]
  train_eval = tx.shape[0] if train_eval is None else train_eval
  return Dataset(tx, ty, (vx, vy), (tx[:train_eval], ty[:train_eval]), classes, tx.shape[1:])


def _text_windows(config, train_eval) -> Dataset:
  """A text corpus as byte-level next-token windows of ``config.window`` tokens."""
  from experiments import text
  splits = text.corpus(config.dataset, config.get("data_dir"))
  with validate.library_errors("window"):  # a corpus shorter than one window
    tx, ty = data.windows(data.byte_tokens(splits["train"]), config.window)
    vx, vy = data.windows(data.byte_tokens(splits["valid"]), config.window)
  keep = config.get("max_train_windows") or None  # the first windows of the stream
  tx, ty = tx[:keep], ty[:keep]
  evaluated = config.get("eval_examples") or vx.shape[0]
  train_eval = min(train_eval or tx.shape[0], tx.shape[0])
  return Dataset(tx, ty, (vx[:evaluated], vy[:evaluated]), (tx[:train_eval], ty[:train_eval]),
                 256, tx.shape[1:])
