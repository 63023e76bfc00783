"""ImageNet examples decoded and resized on the host, batch by batch (:class:`ImageNetData`).

ImageNet does not fit in device memory: the engine loads a chunk's batches
from this host data source (:class:`dana_jax.engine.HostData`) as it runs.
:func:`imagenet` finds tfds's prepared
``imagenet2012`` and returns its splits as :class:`ImageNetData`.
"""

from __future__ import annotations

import concurrent.futures
import os
import textwrap

import numpy as np

from dana_jax.engine import HostData
from experiments import input_pipeline
from experiments.input_pipeline import NUM_CLASSES, DataError


class ImageNetData(HostData):
  """imagenet2012 examples decoded and resized on the host, in parallel threads.

  ``mode="train"``: uint8 [S, S, 3], the image's shorter side resized to S
  (``stored_size``) and its central S × S square; the random-resized crop
  to ``image_size`` then runs on the device in JAX
  (:func:`experiments.augment.random_resized_crop`), so crop boxes are drawn
  within that square rather than the whole image (documented deviation).
  ``mode="eval"``: float32 [size, size, 3], shorter side resized to S, the
  central ``image_size`` square, standardized with the ImageNet statistics —
  the standard single-crop evaluation (S = 256, size = 224).

  Args:
    source: a tfds data source of imagenet2012 (or any sequence of
      ``{"image", "label"}`` dicts).
    mode: ``"train"`` or ``"eval"``.
    limit: use only the first ``limit`` examples (e.g. a train-error subset).
    threads: host decoding threads (PIL releases the GIL while decoding and
      resizing); default: the CPU count.
    where: a description of the data's location, for error messages.
  """

  MODES = ("train", "eval")

  def __init__(self, source, *, mode: str, stored_size: int = 256, image_size: int = 224,
               limit: int | None = None, threads: int | None = None, where: str = "imagenet2012"):
    if mode not in self.MODES:
      raise ValueError(f"mode={mode!r} is not allowed: choose one of {self.MODES}.")
    if not 1 <= image_size <= stored_size:
      raise ValueError(f"image_size={image_size} is not allowed: need 1 ≤ image_size ≤ "
                       f"stored_size ({stored_size}).")
    self.source, self.mode, self.where = source, mode, where
    self.stored_size, self.image_size = int(stored_size), int(image_size)
    self.limit = len(source) if limit is None else min(int(limit), len(source))
    self.threads = threads or os.cpu_count() or 1

  def __len__(self):
    return self.limit

  def head(self, n: int) -> ImageNetData:
    """The first ``n`` examples, same mode."""
    return ImageNetData(self.source, mode=self.mode, stored_size=self.stored_size,
                        image_size=self.image_size, limit=n, threads=self.threads,
                        where=self.where)

  @property
  def example_shape(self) -> tuple[int, int, int]:
    side = self.stored_size if self.mode == "train" else self.image_size
    return (side, side, 3)

  def _square(self, image: np.ndarray, index: int) -> np.ndarray:
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 2:
      image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or min(image.shape[:2]) < 1:
      raise DataError(f"{self.where}: example {index} has image shape {image.shape}, "
                      "expected [H, W, 3].")
    image = np.broadcast_to(image, image.shape[:2] + (3,)) if image.shape[-1] == 1 \
        else image[..., :3]
    h, w = image.shape[:2]
    s = self.stored_size
    size = (s, max(s, round(w * s / h))) if h <= w else (max(s, round(h * s / w)), s)
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(image, np.uint8)).resize(
        (size[1], size[0]), Image.Resampling.BILINEAR))
    side = s if self.mode == "train" else self.image_size
    top, left = (size[0] - side) // 2, (size[1] - side) // 2
    return resized[top:top + side, left:left + side]

  def _load_flat(self, indices: np.ndarray):
    items = [self.source[int(i)] for i in indices]
    images = np.stack([self._square(x["image"], int(i)) for x, i in zip(items, indices)])
    labels = np.asarray([x["label"] for x in items], np.int32)
    bad = (labels < 0) | (labels >= NUM_CLASSES["imagenet2012"])
    if bad.any():
      raise DataError(f"{self.where}: example {int(indices[bad][0])} has label "
                      f"{int(labels[bad][0])}, outside 0..999.")
    return images, labels

  def load(self, indices):
    indices = np.asarray(indices, np.int64)
    flat = indices.ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= self.limit):
      raise IndexError(f"{self.where}: indices must lie in 0..{self.limit - 1}.")
    parts = np.array_split(flat, max(1, min(self.threads, flat.size // 16)))
    with concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
      loaded = list(pool.map(self._load_flat, parts))
    images = np.concatenate([x for x, _ in loaded])
    labels = np.concatenate([y for _, y in loaded])
    if self.mode == "eval":
      from experiments.augment import standardize
      images = standardize(images, xp=np)
    return (images.reshape(indices.shape + self.example_shape),
            labels.reshape(indices.shape))

  def example_nbytes(self) -> int:
    return int(np.prod(self.example_shape)) * (1 if self.mode == "train" else 4)


def imagenet(*, data_dir: str | None = None, download: bool = False, stored_size: int = 256,
             image_size: int = 224, train_eval_examples: int = 10_000,
             eval_examples: int | None = None):
  """ImageNet (ILSVRC 2012) through tfds's ``imagenet2012``, kept on the host.

  Returns:
    ``(train, validation, train_eval)``:
    :class:`ImageNetData` in ``"train"``
    mode (uint8, for the JAX random-resized crop), the validation split in
    ``"eval"`` mode (limited to ``eval_examples``), and the first
    ``train_eval_examples`` training examples in ``"eval"`` mode.

  Raises:
    DataError: where the data was looked for and tfds's manual-download
      instructions, when the prepared data set is missing.
  """
  where = data_dir or os.path.expanduser("~/tensorflow_datasets")
  try:
    train, validation = input_pipeline.tfds_sources("imagenet2012", data_dir, download,
                                      splits=("train", "validation"))
  except Exception as e:  # any failure here means: the data is not available
    import tensorflow_datasets as tfds

    instructions = textwrap.dedent(
        tfds.builder_cls("imagenet2012").MANUAL_DOWNLOAD_INSTRUCTIONS).strip()
    raise DataError(
        f"imagenet2012 was not found in data_dir={where} ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}). ImageNet cannot be downloaded "
        f"automatically. tfds's instructions:\n{instructions}\nPut the two tar files in "
        f"{where}/downloads/manual, then prepare it once with `tfds build imagenet2012 "
        f"--data_dir={where} --file_format=array_record` (random access needs array_record), "
        "or pass --config.data_dir=DIR where it is prepared.") from e
  kwargs = dict(stored_size=stored_size, image_size=image_size)
  return (ImageNetData(train, mode="train", where=f"{where} imagenet2012 train", **kwargs),
          ImageNetData(validation, mode="eval", limit=eval_examples,
                       where=f"{where} imagenet2012 validation", **kwargs),
          ImageNetData(train, mode="eval", limit=train_eval_examples,
                       where=f"{where} imagenet2012 train", **kwargs))
