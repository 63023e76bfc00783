"""Model sizes match the papers, and the BatchNorm adapter matches flax's own update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dana_jax as dj
from dana_jax import models


def n_params(module, shape):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape),
                                                 train=False))
  return models.count_params(variables["params"])


def cifar_resnet_count(depth, classes=10):
  """Option-A ResNet-(6n+2) counted by hand: convs, BN scale+bias, the dense head."""
  n = (depth - 2) // 6
  conv = lambda cin, cout: 9 * cin * cout
  total = conv(3, 16) + 2 * 16
  for cin, cout in ((16, 16), (16, 32), (32, 64)):
    total += conv(cin, cout) + conv(cout, cout) + 4 * cout          # first block
    total += (n - 1) * (2 * conv(cout, cout) + 4 * cout)            # the others
  return total + 64 * classes + classes


@pytest.mark.parametrize("module,shape,expected", [
    (models.CifarResNet(20), (1, 32, 32, 3), cifar_resnet_count(20)),  # 269,722: "0.27 M"
    (models.CifarResNet(56), (1, 32, 32, 3), cifar_resnet_count(56)),  # "0.85 M"
    (models.WideResNet(16, 4), (1, 32, 32, 3), 2_748_890),  # Zagoruyko & Komodakis: 2.7 M
    (models.ResNet50(), (1, 224, 224, 3), 25_557_032),      # torchvision's count
])
def test_parameter_counts(module, shape, expected):
  assert n_params(module, shape) == expected


def test_cifar100_head():
  assert (n_params(models.CifarResNet(20, num_classes=100), (1, 32, 32, 3))
          == cifar_resnet_count(20, 100))
  assert cifar_resnet_count(20) == 269_722


def test_bad_depth_is_named():
  with pytest.raises(ValueError, match="depth=21"):
    n_params(models.CifarResNet(21), (1, 32, 32, 3))


def test_contribution_fold_equals_flax_running_average():
  """Folding the zero-stat contribution reproduces flax's own BatchNorm update."""
  module = models.CifarResNet(8)
  model = dj.flax_model(module, (32, 32, 3))
  params, stats = model.init(jax.random.key(0))
  stats = jax.tree.map(lambda s: s + 0.3, stats)  # non-trivial running statistics
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  _, contribution = model.loss(params, x, jnp.zeros(4, jnp.int32), None)
  ours = model.fold(stats, contribution)
  _, mutated = module.apply({"params": params, "batch_stats": stats}, x, train=True,
                            mutable=["batch_stats"])
  for a, b in zip(jax.tree_util.tree_leaves(ours),
                  jax.tree_util.tree_leaves(mutated["batch_stats"]), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
