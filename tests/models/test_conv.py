"""dana_jax.conv: the same convolution and gradients as lax, by forward convolutions only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import dana_jax as dj
from dana_jax import conv, models

NHWC = ("NHWC", "HWIO", "NHWC")
CASES = [  # (size, kernel, stride, padding)
    (8, 3, 1, "SAME"), (9, 3, 2, "SAME"), (8, 3, 2, "SAME"), (8, 1, 2, "VALID"),
    (12, 7, 2, ((3, 3), (3, 3))), (10, 3, 1, "VALID"), (11, 3, 3, ((2, 0), (1, 1))),
    (7, 5, 1, ((0, 4), (2, 2)))]


def loss(conv_fn, x, w, stride, padding):
  return jnp.sum(jnp.sin(conv_fn(x, w, (stride, stride), padding, dimension_numbers=NHWC)))


@pytest.mark.parametrize("size,kernel,stride,padding", CASES)
def test_explicit_gradients_equal_xla_gradients(size, kernel, stride, padding):
  rng = np.random.default_rng(size * kernel + stride)
  x = jnp.asarray(rng.normal(size=(3, size, size + 1, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 4, 5)), jnp.float32)
  explicit = lambda *a, **k: conv.conv_general_dilated(*a, mode="explicit", **k)
  np.testing.assert_array_equal(
      explicit(x, w, (stride, stride), padding, dimension_numbers=NHWC),
      lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=NHWC))
  ours = jax.grad(loss, (1, 2))(explicit, x, w, stride, padding)
  plain = jax.grad(loss, (1, 2))(lax.conv_general_dilated, x, w, stride, padding)
  for a, b in zip(ours, plain, strict=True):  # equal up to summation order
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_unsupported_configurations_fall_back_to_lax():
  x = jnp.ones((2, 6, 6, 4))
  for kwargs, w in (({"feature_group_count": 2}, jnp.ones((3, 3, 2, 4))),
                    ({"rhs_dilation": (2, 2)}, jnp.ones((3, 3, 4, 4)))):
    f = lambda w_: jnp.sum(conv.conv_general_dilated(
        x, w_, (1, 1), "SAME", dimension_numbers=NHWC, mode="explicit", **kwargs) ** 2)
    g = lambda w_: jnp.sum(lax.conv_general_dilated(
        x, w_, (1, 1), "SAME", dimension_numbers=NHWC, **kwargs) ** 2)
    np.testing.assert_array_equal(jax.grad(f)(w), jax.grad(g)(w))
  with pytest.raises(ValueError, match="mode='fast'"):
    conv.conv_general_dilated(x, jnp.ones((3, 3, 4, 4)), (1, 1), "SAME",
                              dimension_numbers=NHWC, mode="fast")


@pytest.mark.slow
def test_resnet_gradients_inside_scan_equal_plain_flax(monkeypatch):
  """ResNet-8 (strided convs, option-A shortcuts, BatchNorm) in a scan, both formulations."""
  model = dj.flax_model(models.CifarResNet(8, 10), (16, 16, 3))
  params, _ = model.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
  y = jnp.arange(4) % 10

  def grads():
    def body(p, _):
      g = jax.grad(lambda q: model.loss(q, x, y, jax.random.key(2))[0])(p)
      return jax.tree.map(lambda a, b: a - 0.1 * b, p, g), g
    return jax.jit(lambda p: jax.lax.scan(body, p, None, length=2))(params)

  assert jax.default_backend() == "cpu" and conv.EXPLICIT_GRADIENTS["cpu"]
  ours = grads()
  monkeypatch.setitem(conv.EXPLICIT_GRADIENTS, "cpu", False)
  plain = grads()
  for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(plain),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * max(1.0, float(jnp.max(jnp.abs(b)))))
