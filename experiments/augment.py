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


# ImageNet channel statistics (of images scaled to [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def standardize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD, xp=jnp):
  """uint8 (or [0, 255] float) images → float32, per channel (x/255 − mean)/std.

  ``xp``: ``jax.numpy`` (on device) or ``numpy`` (on the host).
  """
  x = images.astype(xp.float32) / xp.float32(255.0)
  return (x - xp.asarray(mean, xp.float32)) / xp.asarray(std, xp.float32)


def random_resized_crop(images, key, size: int = 224, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3), flip: bool = True):
  """ImageNet training augmentation (Szegedy et al. 2015; He et al. 2016), in JAX.

  Per image: a box of area ``s``·HW (s uniform in ``scale``) and aspect ratio
  ``r`` (log-uniform in ``ratio``), clipped to the image, at a uniform
  position, resized to ``size`` × ``size`` with an antialiased bilinear
  kernel; then a random horizontal flip and standardization with the ImageNet
  channel statistics. One sample per image (torchvision retries up to 10
  times before falling back to a centre crop; clipping replaces the retries).

  Args:
    images: [B, H, W, 3] uint8 (as :class:`experiments.imagenet_data.ImageNetData`
      stores them for training).
    key: a JAX key; each example gets its own sub-key.

  Returns:
    [B, size, size, 3] float32.
  """
  batch, height, width, channels = images.shape

  def one(image, key):
    k_area, k_ratio, k_y, k_x, k_flip = jax.random.split(key, 5)
    area = height * width * jax.random.uniform(k_area, (), minval=scale[0], maxval=scale[1])
    log_r = jax.random.uniform(k_ratio, (), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1]))
    aspect = jnp.exp(log_r)
    crop_w = jnp.clip(jnp.sqrt(area * aspect), 1.0, width)
    crop_h = jnp.clip(jnp.sqrt(area / aspect), 1.0, height)
    y0 = jax.random.uniform(k_y, ()) * (height - crop_h)
    x0 = jax.random.uniform(k_x, ()) * (width - crop_w)
    factor = jnp.stack([size / crop_h, size / crop_w])
    out = jax.image.scale_and_translate(
        image.astype(jnp.float32), (size, size, channels), (0, 1), factor,
        -jnp.stack([y0, x0]) * factor, method="linear", antialias=True)
    return jnp.where(flip & jax.random.bernoulli(k_flip), out[:, ::-1, :], out)

  crops = jax.vmap(one)(images, jax.random.split(key, batch))
  return standardize(crops)
