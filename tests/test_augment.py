import jax
import jax.numpy as jnp
import numpy as np

from experiments.augment import random_crop_and_flip


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
