"""A 2-D convolution whose gradients stay fast inside ``lax.scan`` on XLA:CPU.

XLA:CPU lowers the two backward convolutions of ``lax.conv_general_dilated``
(input gradient: a convolution with a reversed, transposed kernel; kernel
gradient: a convolution over the batch axis) to a naive loop nest when they
sit inside a ``while`` loop such as ``lax.scan``, many times slower than the
same step called from Python (docs/benchmarks.md, "The convolution-gradient-in-scan
problem"). The engine runs every gradient inside a scan.

:func:`conv_general_dilated` is a drop-in for flax's ``nn.Conv(...,
conv_general_dilated=...)``. On CPU it computes the same convolution with a
``custom_vjp`` whose backward pass consists only of *forward* convolutions
in NHWC / HWIO layout, which XLA:CPU runs on its fast path inside loops:

* input gradient: the output gradient, dilated by the stride (zeros inserted
  explicitly), convolved with the spatially flipped kernel whose in/out
  channels are swapped;
* kernel gradient: the padded input with batch and channels swapped
  (``[C_in, H, W, B]``) convolved with the output gradient as a kernel
  (``[H_out, W_out, B, C_out]``, dilated by the stride), then transposed.

The values are those of ``lax.conv_general_dilated``'s own gradients up to
float rounding (summation order; tested). On other backends, and for
configurations outside this scope (dilations, groups, other layouts, negative
padding), it calls ``lax.conv_general_dilated`` unchanged.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from dana_jax.errors import ConfigError

_NHWC = ("NHWC", "HWIO", "NHWC")
MODES = ("auto", "explicit", "xla")
# Which gradient formulation "auto" uses per backend (docs/benchmarks.md).
EXPLICIT_GRADIENTS = {"cpu": True}


def _forward(x, w, strides, padding):
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def explicit_conv(x, w, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]):
  """NHWC × HWIO convolution with explicit non-negative padding and forward-only gradients."""
  return _forward(x, w, strides, padding)


def _explicit_fwd(x, w, strides, padding):
  return _forward(x, w, strides, padding), (x, w)


def _explicit_bwd(strides, padding, residuals, g):
  x, w = residuals
  kernel = w.shape[:2]
  dilated = g
  if strides != (1, 1):
    b, h, wd, c = g.shape
    dilated = jnp.zeros((b, (h - 1) * strides[0] + 1, (wd - 1) * strides[1] + 1, c), g.dtype)
    dilated = dilated.at[:, ::strides[0], ::strides[1]].set(g)
  pads = []
  for d, (k, (lo, hi)) in enumerate(zip(kernel, padding, strict=True)):
    uncovered = x.shape[1 + d] + lo + hi - k - (g.shape[1 + d] - 1) * strides[d]
    pads.append((k - 1 - lo, k - 1 - hi + uncovered))
  dx = _forward(dilated, jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2)), (1, 1), pads)
  padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  dw = lax.conv_general_dilated(
      jnp.transpose(padded, (3, 1, 2, 0)), jnp.transpose(g, (1, 2, 0, 3)), (1, 1), "VALID",
      rhs_dilation=strides, dimension_numbers=_NHWC)
  dw = jnp.transpose(dw[:, :kernel[0], :kernel[1]], (1, 2, 0, 3))
  return dx.astype(x.dtype), dw.astype(w.dtype)


explicit_conv.defvjp(_explicit_fwd, _explicit_bwd)


def _is_nhwc(dimension_numbers, ndim: int) -> bool:
  if dimension_numbers is None or ndim != 4:
    return False
  expected = lax.conv_dimension_numbers((1,) * 4, (1,) * 4, _NHWC)
  given = lax.conv_dimension_numbers((1,) * 4, (1,) * 4, dimension_numbers)
  return given == expected


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None,
                         mode: str = "auto"):
  """``lax.conv_general_dilated`` with scan-friendly gradients on CPU (module docstring).

  Args:
    mode: ``"auto"`` (explicit gradients where ``EXPLICIT_GRADIENTS`` says so
      for the default backend), ``"explicit"`` or ``"xla"``.
  """
  if mode not in MODES:
    raise ConfigError(f"mode={mode!r} is not allowed: choose one of {MODES}.")
  explicit = (mode == "explicit" or
              (mode == "auto" and EXPLICIT_GRADIENTS.get(jax.default_backend(), False)))
  unit = lambda d: d is None or all(v == 1 for v in d)
  if explicit and _is_nhwc(dimension_numbers, lhs.ndim) and unit(lhs_dilation) \
      and unit(rhs_dilation) and feature_group_count == 1 and batch_group_count == 1 \
      and preferred_element_type is None:
    pads = (lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
            if isinstance(padding, str) else padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    if all(lo >= 0 and hi >= 0 for lo, hi in pads):
      return explicit_conv(lhs, rhs, tuple(int(s) for s in window_strides), pads)
  return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)


__all__ = ["EXPLICIT_GRADIENTS", "MODES", "conv_general_dilated", "explicit_conv"]
