"""tfds input pipeline: our Fashion-MNIST IDX builder, CIFAR via mock data, clear errors."""

import gzip
import struct
import time

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from experiments import imagenet_data  # noqa: E402
from experiments import input_pipeline as ip  # noqa: E402
from experiments.imagenet_data import ImageNetData  # noqa: E402


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


def test_imagenet_through_tfds_mock_data_is_decoded_on_the_host():
  with tfds.testing.mock_data(num_examples=20):
    train, validation, train_eval = imagenet_data.imagenet(stored_size=40, image_size=32,
                                                train_eval_examples=8, eval_examples=12)
    assert (len(train), len(validation), len(train_eval)) == (20, 12, 8)
    x, y = train.load(np.arange(6).reshape(2, 3))  # mock images have random sizes
    assert x.shape == (2, 3, 40, 40, 3) and x.dtype == np.uint8
    assert y.shape == (2, 3) and y.dtype == np.int32 and 0 <= y.min() and y.max() < 1000
    v, _ = validation.load(np.arange(5))
    assert v.shape == (5, 32, 32, 3) and v.dtype == np.float32
    again, _ = train.load(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(x, again)
    assert train.example_nbytes() == 40 * 40 * 3 and validation.example_nbytes() == 32 * 32 * 12
    with pytest.raises(IndexError, match="0..11"):
      validation.load(np.array([12]))


def test_imagenet_resize_keeps_the_central_square():
  wide = np.zeros((20, 60, 3), np.uint8)
  wide[:, 20:40] = 255  # the central 20 columns are white
  data = ImageNetData([{"image": wide, "label": 3}], mode="train", stored_size=20,
                         image_size=16)
  x, y = data.load(np.array([0]))
  assert x.shape == (1, 20, 20, 3) and y.tolist() == [3]
  assert x.min() >= 250  # only the white centre is kept
  gray = ImageNetData([{"image": np.full((30, 20), 7, np.uint8), "label": 1}], mode="train",
                         stored_size=10, image_size=8)
  assert gray.load(np.array([0]))[0].shape == (1, 10, 10, 3)
  bad = ImageNetData([{"image": wide, "label": 1000}], mode="train", stored_size=20,
                        image_size=16, where="my imagenet")
  with pytest.raises(ip.DataError, match="my imagenet: example 0 has label 1000"):
    bad.load(np.array([0]))
  with pytest.raises(ip.DataError, match="image shape"):
    ImageNetData([{"image": np.zeros((4, 4, 2), np.uint8), "label": 0}],
                    mode="eval", stored_size=4, image_size=4).load(np.array([0]))
  with pytest.raises(ValueError, match="image_size=300"):
    ImageNetData([], mode="train", stored_size=256, image_size=300)


def test_missing_imagenet_passes_on_tfds_manual_download_instructions(tmp_path):
  expected = (f"(?s)imagenet2012 was not found in data_dir={tmp_path}.*"
              "ILSVRC2012_img_train.tar.*downloads/manual.*tfds build imagenet2012")
  with pytest.raises(ip.DataError, match=expected):
    imagenet_data.imagenet(data_dir=str(tmp_path))


def test_corrupt_prepared_files_are_named(tmp_path):
  idx = tmp_path / "idx"
  idx.mkdir()
  fake_fashion(idx)
  data_dir = tmp_path / "tfds"
  ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx), download=False)
  (record,) = [p for p in data_dir.rglob("*train.array_record*")]
  record.write_bytes(record.read_bytes()[: record.stat().st_size // 3])
  with pytest.raises(ip.DataError, match=f"fashion_mnist train: cannot read .*{record.name}"):
    ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx), download=False)


def test_wrong_image_shape_from_tfds_is_named():
  with tfds.testing.mock_data(num_examples=8):
    source = tfds.data_source("cifar10", split="train", download=False)
    with pytest.raises(ip.DataError, match=r"cifar10 train: images .* are \(32, 32, 3\), "
                                           r"expected \(28, 28, 1\)"):
      ip._read_all(source, "cifar10 train", (28, 28, 1))


# --- offline: a missing or damaged data set fails in seconds, never from another cache ---

def _no_debris(directory):
  return [str(p) for p in directory.rglob("*") if "incomplete" in p.name or ".tmp." in p.name]


def test_an_empty_idx_dir_fails_at_once_and_says_where_the_files_go(tmp_path):
  idx, data_dir = tmp_path / "idx", tmp_path / "tfds"
  idx.mkdir()
  began = time.perf_counter()
  with pytest.raises(ip.DataError) as error:
    ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx))
  assert time.perf_counter() - began < 10
  message = str(error.value)
  assert message.startswith(f"config.idx_dir='{idx}' is not allowed: no IDX files in {idx}")
  for name in (f for pair in ip.IDX_FILES.values() for f in pair):
    assert name in message
  assert "apt-get install dataset-fashion-mnist" in message and ip.FASHION_MNIST_IDX_DIR in message
  assert not data_dir.exists()  # nothing prepared, nothing downloaded
  fake_fashion(idx)
  (idx / ip.IDX_FILES["test"][1]).unlink()
  with pytest.raises(ip.DataError, match=f"{idx} lacks t10k-labels-idx1-ubyte.gz\\. Install"):
    ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx))


def test_changed_or_truncated_idx_files_are_never_served_from_the_cache(tmp_path):
  idx, data_dir = tmp_path / "idx", tmp_path / "tfds"
  idx.mkdir()
  first = fake_fashion(idx, train=40, test=12, seed=0)
  tx, ty, _, _ = ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx))
  np.testing.assert_array_equal(as_rows(tx[..., 0], ty), as_rows(*first["train"]))
  # The cache is warm; truncate a file: refused, naming it (not the cached 40 images).
  path = idx / ip.IDX_FILES["train"][0]
  raw = gzip.open(path).read()
  with gzip.open(path, "wb") as f:
    f.write(raw[:-28 * 28 * 3])
  began = time.perf_counter()
  with pytest.raises(ip.DataError, match="train-images-idx3-ubyte.gz: expected 31360 data "
                                         "bytes .* found 29008 .truncated"):
    ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(idx))
  assert time.perf_counter() - began < 10
  # Other valid files in the same place (and a second source next to it): each its own data.
  second = fake_fashion(idx, train=24, test=8, seed=1)
  other = tmp_path / "other"
  other.mkdir()
  third = fake_fashion(other, train=16, test=4, seed=2)
  for source, written in ((idx, second), (other, third), (idx, second)):
    tx, ty, vx, vy = ip.load("fashion_mnist", data_dir=str(data_dir), idx_dir=str(source))
    np.testing.assert_array_equal(as_rows(tx[..., 0], ty), as_rows(*written["train"]))
    np.testing.assert_array_equal(as_rows(vx[..., 0], vy), as_rows(*written["test"]))
  assert ip.idx_digest(idx) != ip.idx_digest(other)
  assert not _no_debris(data_dir)


def test_cifar10_without_data_fails_in_seconds_without_debris(tmp_path):
  began = time.perf_counter()
  with pytest.raises(ip.DataError, match=f"(?s)cifar10 was not found in data_dir={tmp_path} "
                                         ".*nothing is downloaded here.*tfds build cifar10"):
    ip.load("cifar10", data_dir=str(tmp_path))  # the default: no download
  assert time.perf_counter() - began < 10
  assert not _no_debris(tmp_path) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,argv,expected", [
    ("cifar10", ["--config.data_dir={data}"], "cifar10 was not found in data_dir={data}"),
    ("fashion_mnist", ["--config.idx_dir={data}"],
     "config.idx_dir='{data}' is not allowed: no IDX files in {data}"),
])
def test_an_experiment_without_its_data_is_one_error_line_in_seconds(tmp_path, name, argv,
                                                                     expected):
  from experiments import main
  data_dir, workdir = tmp_path / "data", tmp_path / "runs"
  data_dir.mkdir()
  tiny = ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
          "--config.epochs=1", "--config.baseline="]
  began = time.perf_counter()
  with pytest.raises(SystemExit) as stop:
    main.run(name, [*tiny, *(a.format(data=data_dir) for a in argv), f"--workdir={workdir}"])
  assert time.perf_counter() - began < 10
  message = str(stop.value.code)
  assert message.startswith("error: ") and expected.format(data=data_dir) in message, message
  assert not workdir.exists() and not list(data_dir.iterdir())


def test_a_damaged_text_corpus_is_named(tmp_path):
  from experiments import text
  for split in ("train", "valid", "test"):
    (tmp_path / f"wiki.{split}.tokens").write_text(f" = {split} = \n\n tokens of {split} \n")
  (tmp_path / "wiki.valid.tokens").write_bytes(b" = valid = \xff\xfe broken")
  with pytest.raises(ip.DataError, match=r"wiki\.valid\.tokens: not UTF-8 text at byte 11"):
    text.wikitext103(tmp_path)
  (tmp_path / "wiki.valid.tokens").write_text("  \n")
  with pytest.raises(ip.DataError, match=r"wiki\.valid\.tokens: the file is empty"):
    text.wikitext103(tmp_path)
  with pytest.raises(ip.DataError, match=f"config.data_dir='{tmp_path}' is not allowed: it "
                                         "has no foldoc.dict.dz.*apt-get install -y dict-foldoc"):
    text.corpus("foldoc", tmp_path)
  (tmp_path / "foldoc.dict.dz").write_bytes(b"not gzip at all")
  with pytest.raises(ip.DataError, match="foldoc.dict.dz: not a readable dictzip/gzip file"):
    text.corpus("foldoc", tmp_path)
