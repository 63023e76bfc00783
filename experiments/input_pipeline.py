"""Data sets through tensorflow-datasets, without TensorFlow (``tfds.data_source``).

Small data sets are read once into numpy arrays (uint8 images, int32 labels)
and then live in device memory; the engine gathers each batch by index.

* ``cifar10``, ``cifar100``: tfds's builders (``tfds.data_source``).
* ``fashion_mnist``: our builder :class:`FashionMnistIdx` over the original IDX
  files (Debian package ``dataset-fashion-mnist`` puts them in
  ``/usr/share/datasets/fashion-mnist``), prepared once into array_record
  files; falls back to tfds's own ``fashion_mnist`` builder (which downloads)
  when the IDX files are absent.
"""

from __future__ import annotations

import functools
import gzip
import os
import pathlib
import struct

import numpy as np

FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
DATASETS = ("cifar10", "cifar100", "fashion_mnist")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "fashion_mnist": 10}
# tfds prepares TFRecord by default, which data_source cannot read at random.
RANDOM_ACCESS = {"file_format": "array_record"}


class DataError(ValueError):
  """A data set is missing or malformed; the message says where and what to do."""


def read_idx(path: str | os.PathLike, expected_ndim: int) -> np.ndarray:
  """Reads a gzipped IDX file (the MNIST format) into a uint8 array.

  Raises:
    DataError: naming the file, when it is truncated, not IDX, or of the
      wrong rank.
  """
  path = pathlib.Path(path)
  try:
    with gzip.open(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f"{path}: cannot read the gzipped IDX file ({e}).") from e
  if len(raw) < 4:
    raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes).")
  zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
  if zero != 0 or dtype_code != 0x08:
    raise DataError(f"{path}: not an unsigned-byte IDX file (header {raw[:4].hex()}).")
  if ndim != expected_ndim:
    raise DataError(f"{path}: has {ndim} dimensions, expected {expected_ndim}.")
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f"{path}: truncated IDX header.")
  shape = struct.unpack(">" + "I" * ndim, raw[4:header])
  size = int(np.prod(shape))
  if len(raw) - header != size:
    raise DataError(f"{path}: expected {size} data bytes for shape {shape}, found "
                    f"{len(raw) - header} (truncated or corrupt file).")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_fashion_mnist_idx(idx_dir: str | os.PathLike, split: str):
  """Images [n, 28, 28, 1] uint8 and labels [n] of one split, validated."""
  images_name, labels_name = IDX_FILES[split]
  images = read_idx(pathlib.Path(idx_dir) / images_name, 3)
  labels = read_idx(pathlib.Path(idx_dir) / labels_name, 1)
  if images.shape[1:] != (28, 28):
    raise DataError(f"{pathlib.Path(idx_dir) / images_name}: images are {images.shape[1:]}, "
                    "expected 28×28.")
  if images.shape[0] != labels.shape[0]:
    raise DataError(f"{idx_dir}: {images.shape[0]} images but {labels.shape[0]} labels in "
                    f"the {split} split.")
  if labels.size and labels.max() > 9:
    raise DataError(f"{pathlib.Path(idx_dir) / labels_name}: label {labels.max()} is outside "
                    "0..9.")
  return images[..., None], labels.astype(np.int32)


@functools.cache
def _fashion_builder_class():
  import tensorflow_datasets as tfds

  class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
    """Fashion-MNIST prepared from the original IDX files on local disk."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "From the original IDX files, offline."}

    def __init__(self, *, idx_dir: str = FASHION_MNIST_IDX_DIR, **kwargs):
      self._idx_dir = idx_dir
      super().__init__(**kwargs)

    def _info(self):
      return self.dataset_info_from_configs(
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
              "label": tfds.features.ClassLabel(num_classes=10)}),
          supervised_keys=("image", "label"),
          homepage="https://github.com/zalandoresearch/fashion-mnist")

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in IDX_FILES}

    def _generate_examples(self, split):
      images, labels = read_fashion_mnist_idx(self._idx_dir, split)
      for i in range(labels.shape[0]):
        yield i, {"image": images[i], "label": int(labels[i])}

  return FashionMnistIdx


def _read_all(source) -> tuple[np.ndarray, np.ndarray]:
  n = len(source)
  images, labels = [], []
  for start in range(0, n, 1024):
    items = [source[i] for i in range(start, min(start + 1024, n))]
    images.append(np.stack([np.asarray(x["image"]) for x in items]))
    labels.append(np.asarray([x["label"] for x in items], np.int32))
  return np.concatenate(images), np.concatenate(labels)


def _tfds_sources(name, data_dir, download):
  """tfds's own train and test data sources, prepared as array_record if need be."""
  import tensorflow_datasets as tfds

  return tuple(tfds.data_source(name, split=split, data_dir=data_dir, download=download,
                                builder_kwargs=RANDOM_ACCESS) for split in ("train", "test"))


def _fashion_sources(data_dir, idx_dir, download):
  idx_dir = idx_dir or FASHION_MNIST_IDX_DIR
  if all((pathlib.Path(idx_dir) / f).exists() for pair in IDX_FILES.values() for f in pair):
    builder = _fashion_builder_class()(idx_dir=idx_dir, data_dir=data_dir,
                                       file_format="array_record")
    builder.download_and_prepare()
    return builder.as_data_source("train"), builder.as_data_source("test")
  try:
    return _tfds_sources("fashion_mnist", data_dir, download)
  except Exception as e:  # noqa: BLE001 - any failure here means: the data is not available
    raise DataError(
        f"Fashion-MNIST was not found: no IDX files in {idx_dir} and tfds's 'fashion_mnist' "
        f"could not be loaded from data_dir={data_dir or '~/tensorflow_datasets'} ({e}). "
        "Install the IDX files with `apt-get install dataset-fashion-mnist` (Debian), or "
        "pass --config.idx_dir=DIR with the four *-ubyte.gz files.") from e


def load(name: str, *, data_dir: str | None = None, idx_dir: str | None = None,
         download: bool = True):
  """``(train_x, train_y, test_x, test_y)`` as numpy arrays (uint8 images, int32 labels).

  Args:
    name: one of ``DATASETS``.
    data_dir: tfds data directory (default ``~/tensorflow_datasets``).
    idx_dir: Fashion-MNIST IDX directory (default ``/usr/share/datasets/fashion-mnist``).
    download: let tfds download and prepare a missing data set.
  """
  if name not in DATASETS:
    raise DataError(f"dataset={name!r} is not allowed: choose one of {DATASETS}.")
  if name == "fashion_mnist":
    train, test = _fashion_sources(data_dir, idx_dir, download)
  else:
    try:
      train, test = _tfds_sources(name, data_dir, download)
    except Exception as e:  # noqa: BLE001
      raise DataError(
          f"{name} was not found in data_dir={data_dir or '~/tensorflow_datasets'} and could "
          f"not be downloaded ({type(e).__name__}: {e}). Prepare it where the network allows "
          f"with `tfds build {name} --file_format=array_record` (random access needs "
          "array_record) and copy the directory, or pass --config.data_dir=DIR.") from e
  train_x, train_y = _read_all(train)
  test_x, test_y = _read_all(test)
  classes = NUM_CLASSES[name]
  for split, y in (("train", train_y), ("test", test_y)):
    if y.size and (y.min() < 0 or y.max() >= classes):
      raise DataError(f"{name} {split}: labels span {y.min()}..{y.max()}, expected "
                      f"0..{classes - 1}.")
  return train_x, train_y, test_x, test_y
