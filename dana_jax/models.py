"""The model zoo: small flax linen models and the GA paper's ResNets.

Plain flax modules ``module(x, train=...)``, independent of the engine;
:func:`dana_jax.flax_model` (:mod:`dana_jax.engine.flax_adapter`) turns one into
the engine's :class:`~dana_jax.engine.Model`. ``dana_jax.models.flax_model`` is a
deprecated alias of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dana_jax import conv as _conv
from dana_jax.errors import ConfigError


def Conv(*args, **kwargs) -> nn.Conv:  # a module constructor
  """flax's ``nn.Conv`` with :mod:`dana_jax.conv`'s gradients (fast inside scan on XLA:CPU)."""
  return nn.Conv(*args, conv_general_dilated=_conv.conv_general_dilated, **kwargs)


class MLP(nn.Module):
  """Fully connected ReLU network; inputs are flattened."""

  features: Sequence[int] = (256, 256)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1))
    for f in self.features:
      x = nn.relu(nn.Dense(f)(x))
    return nn.Dense(self.num_classes)(x)


class SmallCNN(nn.Module):
  """conv-BN-ReLU-pool blocks then a dense layer (BatchNorm optional)."""

  channels: Sequence[int] = (32, 64)
  hidden: int = 128
  num_classes: int = 10
  batch_norm: bool = True
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    if x.ndim == 3:
      x = x[..., None]
    for c in self.channels:
      x = Conv(c, (3, 3), padding="SAME", use_bias=not self.batch_norm)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2), padding="SAME")
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.num_classes)(x)


# --------------------------------------------------------------------------
# The GA paper's models.
# --------------------------------------------------------------------------

_he_normal = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _residual_stages(x, train, block, widths, blocks_per_stage, bn_momentum):
  """Stages of residual blocks; the first block of every stage after the first has stride 2."""
  for stage, (width, blocks) in enumerate(zip(widths, blocks_per_stage, strict=True)):
    for index in range(blocks):
      strides = 2 if stage > 0 and index == 0 else 1
      x = block(width, strides, bn_momentum)(x, train)
  return x


def _batch_norm(train, momentum, **kwargs):
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, **kwargs)


class _CifarBasicBlock(nn.Module):
  """conv3-BN-ReLU-conv3-BN + shortcut, ReLU (He et al. 2016, CIFAR variant).

  The shortcut is option A of the paper: identity, with stride-2 subsampling
  and zero-padded channels when the shape changes (no parameters).
  """

  channels: int
  strides: int
  bn_momentum: float

  @nn.compact
  def __call__(self, x, train):
    norm = lambda: _batch_norm(train, self.bn_momentum)
    y = Conv(self.channels, (3, 3), self.strides, padding="SAME", use_bias=False,
                kernel_init=_he_normal)(x)
    y = nn.relu(norm()(y))
    y = Conv(self.channels, (3, 3), padding="SAME", use_bias=False, kernel_init=_he_normal)(y)
    y = norm()(y)
    if self.strides != 1 or x.shape[-1] != self.channels:
      x = x[:, ::self.strides, ::self.strides, :]
      extra = self.channels - x.shape[-1]
      x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return nn.relu(x + y)


class CifarResNet(nn.Module):
  """ResNet-(6n+2) for 32×32 images (He et al. 2016, §4.2); depth 20: 269,722 parameters.

  References:
    He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
    CVPR 2016 (arXiv:1512.03385).
  """

  depth: int = 20
  num_classes: int = 10
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    if (self.depth - 2) % 6:
      raise ConfigError(f"depth={self.depth} is not allowed: a CIFAR ResNet has depth 6n + 2.")
    n = (self.depth - 2) // 6
    x = Conv(16, (3, 3), padding="SAME", use_bias=False, kernel_init=_he_normal)(x)
    x = nn.relu(_batch_norm(train, self.bn_momentum)(x))
    x = _residual_stages(x, train, _CifarBasicBlock, (16, 32, 64), (n, n, n), self.bn_momentum)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


class _WideBlock(nn.Module):
  """Pre-activation BN-ReLU-conv3-BN-ReLU-conv3 with a 1×1 projection when needed."""

  channels: int
  strides: int
  bn_momentum: float

  @nn.compact
  def __call__(self, x, train):
    norm = lambda: _batch_norm(train, self.bn_momentum)
    out = nn.relu(norm()(x))
    shortcut = x
    if self.strides != 1 or x.shape[-1] != self.channels:
      shortcut = Conv(self.channels, (1, 1), self.strides, use_bias=False,
                         kernel_init=_he_normal)(out)
    y = Conv(self.channels, (3, 3), self.strides, padding="SAME", use_bias=False,
                kernel_init=_he_normal)(out)
    y = nn.relu(norm()(y))
    y = Conv(self.channels, (3, 3), padding="SAME", use_bias=False, kernel_init=_he_normal)(y)
    return shortcut + y


class WideResNet(nn.Module):
  """WRN-depth-k for 32×32 images; WRN 16-4 ≈ 2.7 M parameters.

  References:
    Zagoruyko, Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).
  """

  depth: int = 16
  widen_factor: int = 4
  num_classes: int = 10
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    if (self.depth - 4) % 6:
      raise ConfigError(f"depth={self.depth} is not allowed: a WideResNet has depth 6n + 4.")
    n = (self.depth - 4) // 6
    x = Conv(16, (3, 3), padding="SAME", use_bias=False, kernel_init=_he_normal)(x)
    widths = tuple(w * self.widen_factor for w in (16, 32, 64))
    x = _residual_stages(x, train, _WideBlock, widths, (n, n, n), self.bn_momentum)
    x = nn.relu(_batch_norm(train, self.bn_momentum)(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


class _Bottleneck(nn.Module):
  channels: int
  strides: int
  bn_momentum: float

  @nn.compact
  def __call__(self, x, train):
    norm = lambda **kw: _batch_norm(train, self.bn_momentum, **kw)
    y = nn.relu(norm()(Conv(self.channels, (1, 1), use_bias=False,
                               kernel_init=_he_normal)(x)))
    y = nn.relu(norm()(Conv(self.channels, (3, 3), self.strides, padding="SAME",
                               use_bias=False, kernel_init=_he_normal)(y)))
    y = norm(scale_init=nn.initializers.zeros)(
        Conv(4 * self.channels, (1, 1), use_bias=False, kernel_init=_he_normal)(y))
    if self.strides != 1 or x.shape[-1] != 4 * self.channels:
      x = norm()(Conv(4 * self.channels, (1, 1), self.strides, use_bias=False,
                         kernel_init=_he_normal)(x))
    return nn.relu(x + y)


class ResNet50(nn.Module):
  """ResNet-50 for ImageNet (bottleneck blocks 3-4-6-3), ≈ 25.6 M parameters.

  References:
    He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
    CVPR 2016 (arXiv:1512.03385).
  """

  num_classes: int = 1000
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False,
                kernel_init=_he_normal)(x)
    x = nn.relu(_batch_norm(train, self.bn_momentum)(x))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    widths = tuple(64 * 2 ** stage for stage in range(len(self.stage_sizes)))
    x = _residual_stages(x, train, _Bottleneck, widths, self.stage_sizes, self.bn_momentum)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


def count_params(params) -> int:
  """Number of trainable scalars in a parameter pytree."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))


def __getattr__(name: str):
  """``flax_model``: a deprecated alias of :func:`dana_jax.flax_model` (the adapter lives
  in :mod:`dana_jax.engine.flax_adapter`; imported lazily, so the zoo imports nothing
  from the engine)."""
  if name == "flax_model":
    warnings.warn("dana_jax.models.flax_model is deprecated: use dana_jax.flax_model "
                  "(dana_jax.engine.flax_adapter).", DeprecationWarning, stacklevel=2)
    from dana_jax.engine.flax_adapter import flax_model
    return flax_model
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
