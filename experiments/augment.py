"""Data augmentation in JAX, keyed by the engine (one key per dispatch)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_and_flip(images, key, padding: int = 4):
  """CIFAR augmentation: zero-pad by ``padding``, random crop back, random horizontal flip.

  Args:
    images: [B, H, W, C] float.
    key: a JAX key; each example gets its own sub-key.
  """
  batch, height, width, _ = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def one(image, key):
    k_y, k_x, k_flip = jax.random.split(key, 3)
    y = jax.random.randint(k_y, (), 0, 2 * padding + 1)
    x = jax.random.randint(k_x, (), 0, 2 * padding + 1)
    crop = jax.lax.dynamic_slice(image, (y, x, 0), (height, width, image.shape[-1]))
    return jnp.where(jax.random.bernoulli(k_flip), crop[:, ::-1, :], crop)

  return jax.vmap(one)(padded, jax.random.split(key, batch))
