"""tfds input pipeline: our Fashion-MNIST IDX builder, CIFAR via mock data, clear errors."""

import gzip
import struct

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from experiments import input_pipeline as ip  # noqa: E402


def write_idx(path, array):
  array = np.asarray(array, np.uint8)
  header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim,
                                                                   *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.tobytes())


def fake_fashion(tmp_path, train=40, test=12, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {}
  for split, n in (("train", train), ("test", test)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    names = ip.IDX_FILES[split]
    write_idx(tmp_path / names[0], images)
    write_idx(tmp_path / names[1], labels)
    arrays[split] = (images, labels)
  return arrays


def as_rows(images, labels):
  flat = np.concatenate([images.reshape(len(labels), -1), labels[:, None]], axis=1)
  return flat[np.lexsort(flat.T[::-1])]


def test_fashion_mnist_builder_reads_idx_files(tmp_path):
  idx = tmp_path / "idx"
  idx.mkdir()
  written = fake_fashion(idx)
  tx, ty, vx, vy = ip.load("fashion_mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(idx),
                           download=False)
  assert tx.shape == (40, 28, 28, 1) and tx.dtype == np.uint8 and ty.dtype == np.int32
  assert vx.shape == (12, 28, 28, 1)
  # tfds stores examples in its own order: compare as multisets of rows.
  np.testing.assert_array_equal(as_rows(tx[..., 0], ty), as_rows(*written["train"]))
  np.testing.assert_array_equal(as_rows(vx[..., 0], vy), as_rows(*written["test"]))


def test_truncated_idx_file_is_named(tmp_path):
  fake_fashion(tmp_path)
  path = tmp_path / ip.IDX_FILES["train"][0]
  raw = gzip.open(path).read()
  with gzip.open(path, "wb") as f:
    f.write(raw[:-100])
  with pytest.raises(ip.DataError, match="train-images-idx3-ubyte.gz.*truncated"):
    ip.read_fashion_mnist_idx(tmp_path, "train")


def test_not_idx_and_bad_labels_are_named(tmp_path):
  fake_fashion(tmp_path)
  path = tmp_path / ip.IDX_FILES["test"][0]
  path.write_bytes(b"this is not gzip")
  with pytest.raises(ip.DataError, match="t10k-images-idx3-ubyte.gz"):
    ip.read_fashion_mnist_idx(tmp_path, "test")
  write_idx(tmp_path / ip.IDX_FILES["train"][1], np.full(40, 12))
  with pytest.raises(ip.DataError, match="label 12 is outside"):
    ip.read_fashion_mnist_idx(tmp_path, "train")
  write_idx(tmp_path / ip.IDX_FILES["train"][0], np.zeros((40, 32, 32)))
  with pytest.raises(ip.DataError, match="expected 28×28"):
    ip.read_fashion_mnist_idx(tmp_path, "train")


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_through_tfds_mock_data(name, classes):
  with tfds.testing.mock_data(num_examples=24):
    tx, ty, vx, vy = ip.load(name, download=False)
  assert tx.shape == (24, 32, 32, 3) and tx.dtype == np.uint8
  assert vx.shape[1:] == (32, 32, 3)
  assert ty.min() >= 0 and ty.max() < classes


def test_missing_data_says_where_and_how(tmp_path):
  expected = "(?s)cifar10 was not found in data_dir=.*tfds build cifar10 --file_format=array_record"
  with pytest.raises(ip.DataError, match=expected):
    ip.load("cifar10", data_dir=str(tmp_path), download=False)
  with pytest.raises(ip.DataError, match="(?s)no IDX files in .*apt-get install dataset-fashion"):
    ip.load("fashion_mnist", data_dir=str(tmp_path), idx_dir=str(tmp_path / "none"),
            download=False)
  with pytest.raises(ip.DataError, match="dataset='svhn'"):
    ip.load("svhn")
