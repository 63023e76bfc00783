import jax
import jax.numpy as jnp
import numpy as np

from experiments.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    random_crop_and_flip,
    random_resized_crop,
    standardize,
)


def test_crop_and_flip_is_a_shifted_window_of_the_padded_image():
  images = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1) + 1
  out = np.asarray(random_crop_and_flip(images, jax.random.key(3), padding=2))
  padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for b in range(2):
    windows = [padded[b, y:y + 6, x:x + 6] for y in range(5) for x in range(5)]
    windows += [w[:, ::-1] for w in windows]
    assert any(np.array_equal(out[b], w) for w in windows)
  # Different keys give different crops somewhere in a larger batch.
  many = jnp.ones((64, 8, 8, 1))
  a = random_crop_and_flip(many, jax.random.key(0))
  assert float(jnp.mean(a)) < 1.0  # zero padding entered some crops


def test_random_resized_crop_of_the_whole_image_is_the_image_standardized():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
  out = random_resized_crop(images, jax.random.key(0), size=16, scale=(1, 1), ratio=(1, 1),
                            flip=False)
  assert out.shape == (3, 16, 16, 3) and out.dtype == jnp.float32
  np.testing.assert_allclose(out, standardize(images, xp=np), atol=1e-5)


def test_random_resized_crop_takes_a_box_of_the_asked_area_and_flips():
  # Pixel value = column index: a crop shows a run of consecutive columns.
  columns = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, None, :, None], (32, 64, 64, 3))
  out = random_resized_crop(columns, jax.random.key(1), size=16, scale=(0.25, 0.25),
                            ratio=(1, 1), flip=True)
  std = 255 * IMAGENET_STD[0]
  pixels = np.asarray(out[:, 8, :, 0]) * std + 255 * IMAGENET_MEAN[0]  # back to columns
  spans = np.abs(pixels[:, -1] - pixels[:, 0])
  np.testing.assert_allclose(spans, 32 * 15 / 16, atol=1.5)  # a 32-column box on 16 pixels
  increasing = pixels[:, -1] > pixels[:, 0]
  assert increasing.any() and (~increasing).any()  # some flipped, some not
  assert pixels.min() >= -0.5 and pixels.max() <= 63.5
  again = random_resized_crop(columns, jax.random.key(1), size=16, scale=(0.25, 0.25),
                              ratio=(1, 1), flip=True)
  np.testing.assert_array_equal(out, again)  # the key alone decides the crop
  other = random_resized_crop(columns, jax.random.key(2), size=16)
  assert other.shape == out.shape and not np.allclose(other, out)
