"""Data sets through tensorflow-datasets, without TensorFlow (``tfds.data_source``).

Small data sets are read once into numpy arrays (uint8 images, int32 labels)
and then live in device memory; the engine gathers each batch by index.
ImageNet does not fit: :func:`experiments.imagenet_data.imagenet` returns
:class:`experiments.imagenet_data.ImageNetData`, host data sources the engine
loads batch by batch, chunk by chunk.

* ``cifar10``, ``cifar100``: tfds's builders (``tfds.data_source``).
* ``imagenet2012``: tfds's builder; its data must be prepared by the user
  (manual download, see tfds's instructions, repeated in our error).
* ``fashion_mnist``: our builder :class:`FashionMnistIdx` over the original IDX
  files (Debian package ``dataset-fashion-mnist`` puts them in
  ``/usr/share/datasets/fashion-mnist``), prepared once into array_record
  files; when no ``idx_dir`` is given and the default one holds no IDX
  files, tfds's own ``fashion_mnist`` builder, if it is prepared.

Nothing here downloads unless asked (``download=True``): on a machine
without network a missing data set fails at once, with a message that says
where the files go. The IDX files are read and checked before tfds sees them,
and their prepared copy is kept under a name derived from their contents
(:func:`idx_digest`), so changed or truncated files are re-read or refused,
never answered from the cache of other files.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import pathlib
import struct

import numpy as np

from dana_jax import errors

FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
DATASETS = ("cifar10", "cifar100", "fashion_mnist")  # in memory (load)
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "fashion_mnist": 10, "imagenet2012": 1000}
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "fashion_mnist": (28, 28, 1)}
# tfds prepares TFRecord by default, which data_source cannot read at random.
RANDOM_ACCESS = {"file_format": "array_record"}


class DataError(errors.ConfigError):
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


def _custom_config_warning(record: logging.LogRecord) -> bool:
  return not record.getMessage().startswith("Using custom data configuration")


@functools.cache
def _fashion_builder_class():
  import tensorflow_datasets as tfds

  class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
    """Fashion-MNIST prepared from the original IDX files on local disk."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "From the original IDX files, offline."}

    def __init__(self, *, idx_dir: str = FASHION_MNIST_IDX_DIR, **kwargs):
      # One prepared copy per content of the IDX files (<data_dir>/fashion_mnist_idx/
      # idx_<digest>/1.0.0): other files are never served from this cache.
      self._idx_dir = idx_dir
      config = tfds.core.BuilderConfig(name=f"idx_{idx_digest(idx_dir)[:16]}",
                                       description=f"IDX files of {idx_dir}")
      absl = logging.getLogger("absl")  # tfds warns of every config not declared in the class
      absl.addFilter(_custom_config_warning)
      try:
        super().__init__(config=config, **kwargs)
      finally:
        absl.removeFilter(_custom_config_warning)

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


def _source_files(source) -> str:
  """The files behind a tfds data source, for error messages."""
  data_dir = getattr(getattr(source, "dataset_info", None), "data_dir", None)
  if data_dir is None:
    return type(source).__name__
  split = str(getattr(source, "split", ""))
  names = sorted(str(f) for f in pathlib.Path(data_dir).glob(f"*-{split}.*")) if split else []
  return ", ".join(names) or str(data_dir)


def _read_all(source, what: str, image_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
  """Every example of a tfds data source, checked; a corrupt file raises DataError naming it."""
  n = len(source)
  images, labels = [], []
  try:
    for start in range(0, n, 1024):
      items = [source[i] for i in range(start, min(start + 1024, n))]
      images.append(np.stack([np.asarray(x["image"]) for x in items]))
      labels.append(np.asarray([x["label"] for x in items], np.int32))
  except Exception as e:  # array_record and the decoders raise many kinds
    raise DataError(f"{what}: cannot read the examples in {_source_files(source)} "
                    f"({type(e).__name__}: {e}); the files are truncated or corrupt: delete "
                    "them and prepare the data set again.") from e
  if not images:
    raise DataError(f"{what}: no examples in {_source_files(source)}.")
  images = np.concatenate(images)
  if images.shape[1:] != image_shape:
    raise DataError(f"{what}: images in {_source_files(source)} are {images.shape[1:]}, "
                    f"expected {image_shape}.")
  return images, np.concatenate(labels)


def tfds_sources(name, data_dir, download, splits=("train", "test")):
  """tfds's own data sources of ``splits``, prepared as array_record if need be.

  With ``download=False`` tfds only reads what is prepared in ``data_dir`` and
  fails at once otherwise (no network access, no ``incomplete.*`` folders).
  """
  import tensorflow_datasets as tfds

  return tuple(tfds.data_source(name, split=split, data_dir=data_dir, download=download,
                                builder_kwargs=RANDOM_ACCESS) for split in splits)


def idx_digest(idx_dir: str | os.PathLike) -> str:
  """SHA-256 over the four Fashion-MNIST IDX files' names and bytes: their identity."""
  digest = hashlib.sha256()
  for pair in IDX_FILES.values():
    for name in pair:
      digest.update(name.encode() + b"\0")
      digest.update((pathlib.Path(idx_dir) / name).read_bytes())
  return digest.hexdigest()


IDX_HELP = ("Install the IDX files with `apt-get install dataset-fashion-mnist` (Debian; "
            f"they go to {FASHION_MNIST_IDX_DIR}), or pass --config.idx_dir=DIR with the four "
            "files " + ", ".join(f for pair in IDX_FILES.values() for f in pair) + " of "
            "https://github.com/zalandoresearch/fashion-mnist.")


def _fashion_sources(data_dir, idx_dir, download):
  """Train and test sources of Fashion-MNIST; an ``idx_dir`` given must hold the IDX files."""
  given = bool(idx_dir)
  idx_dir = pathlib.Path(idx_dir or FASHION_MNIST_IDX_DIR).expanduser()
  names = [f for pair in IDX_FILES.values() for f in pair]
  missing = [f for f in names if not (idx_dir / f).is_file()]
  if given and missing:
    lacks = (f"no IDX files in {idx_dir}" if len(missing) == len(names)
             else f"{idx_dir} lacks {', '.join(missing)}")
    raise DataError(f"config.idx_dir={str(idx_dir)!r} is not allowed: {lacks}. {IDX_HELP}")
  if not missing:
    for split in IDX_FILES:  # every file whole and consistent before tfds prepares them
      read_fashion_mnist_idx(idx_dir, split)
    builder = _fashion_builder_class()(idx_dir=str(idx_dir), data_dir=data_dir,
                                       file_format="array_record")
    builder.download_and_prepare()
    return builder.as_data_source("train"), builder.as_data_source("test")
  try:
    return tfds_sources("fashion_mnist", data_dir, download)
  except Exception as e:  # any failure here means: the data is not available
    raise DataError(
        f"Fashion-MNIST was not found: no IDX files in {idx_dir} and tfds's 'fashion_mnist' "
        f"is not prepared in data_dir={data_dir or '~/tensorflow_datasets'} "
        f"({type(e).__name__}: {_first_line(e)}). {IDX_HELP}") from e


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [""])[0][:300]


def load(name: str, *, data_dir: str | None = None, idx_dir: str | None = None,
         download: bool = False):
  """``(train_x, train_y, test_x, test_y)`` as numpy arrays (uint8 images, int32 labels).

  Args:
    name: one of ``DATASETS``.
    data_dir: tfds data directory (default ``~/tensorflow_datasets``).
    idx_dir: Fashion-MNIST IDX directory (default ``/usr/share/datasets/fashion-mnist``).
    download: let tfds download and prepare a missing data set (default: no network;
      a data set that is not prepared raises DataError at once).
  """
  if name not in DATASETS:
    raise DataError(f"dataset={name!r} is not allowed: choose one of {DATASETS}.")
  if name == "fashion_mnist":
    train, test = _fashion_sources(data_dir, idx_dir, download)
  else:
    try:
      train, test = tfds_sources(name, data_dir, download)
    except Exception as e:
      raise DataError(
          f"{name} was not found in data_dir={data_dir or '~/tensorflow_datasets'} "
          f"({type(e).__name__}: {_first_line(e)}); nothing is downloaded here. Prepare it "
          "where the network allows "
          f"with `tfds build {name} --file_format=array_record` (random access needs "
          "array_record) and copy the directory, or pass --config.data_dir=DIR.") from e
  shape = IMAGE_SHAPES[name]
  train_x, train_y = _read_all(train, f"{name} train", shape)
  test_x, test_y = _read_all(test, f"{name} test", shape)
  classes = NUM_CLASSES[name]
  for split, y, source in (("train", train_y, train), ("test", test_y, test)):
    if y.size and (y.min() < 0 or y.max() >= classes):
      raise DataError(f"{name} {split}: labels in {_source_files(source)} span "
                      f"{y.min()}..{y.max()}, expected 0..{classes - 1}.")
  return train_x, train_y, test_x, test_y
