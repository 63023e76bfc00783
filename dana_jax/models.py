"""Small flax models and the adapter that turns a flax module into an engine Model.

BatchNorm running statistics belong to the master (SPEC §1): a worker's
training forward pass yields its batch's *contribution* (1 − m)·stat, obtained
by running the module with zeroed running statistics, and the master folds it
in at arrival: running ← m·running + contribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dana_jax.engine import Model


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
      x = nn.Conv(c, (3, 3), padding="SAME", use_bias=not self.batch_norm)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2), padding="SAME")
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.num_classes)(x)


def flax_model(module: nn.Module, input_shape: Sequence[int], *,
               bn_momentum: float = 0.9) -> Model:
  """Wraps a flax linen classifier ``module(x, train=...)`` as an engine :class:`Model`.

  Args:
    module: a linen module returning logits; may contain ``nn.BatchNorm``
      layers, all with momentum ``bn_momentum``.
    input_shape: shape of one example (without the batch axis).
    bn_momentum: m of the module's BatchNorm layers.

  Returns:
    A :class:`~dana_jax.engine.Model` whose loss is the mean softmax
    cross-entropy with integer labels.
  """

  def init(key):
    variables = module.init(key, jnp.zeros((1,) + tuple(input_shape), jnp.float32), train=False)
    return variables["params"], variables.get("batch_stats", {})

  def has_stats(tree):
    return bool(jax.tree_util.tree_leaves(tree))

  stats_shape = {}

  def loss(params, inputs, labels, key):
    del key
    zeros = jax.tree.map(jnp.zeros_like, stats_shape.get("tree", {}))
    if has_stats(zeros):
      logits, mutated = module.apply({"params": params, "batch_stats": zeros}, inputs,
                                     train=True, mutable=["batch_stats"])
      contribution = mutated["batch_stats"]
    else:
      logits, contribution = module.apply({"params": params}, inputs, train=True), {}
    value = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return value, contribution

  def fold(model_state, contribution):
    return jax.tree.map(lambda r, c: bn_momentum * r + c, model_state, contribution)

  def predict(params, model_state, inputs):
    variables = {"params": params}
    if has_stats(model_state):
      variables["batch_stats"] = model_state
    return module.apply(variables, inputs, train=False)

  # The shapes of the running statistics, for the zeroed copy in ``loss``.
  _, state = jax.eval_shape(init, jax.random.key(0))
  stats_shape["tree"] = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state)
  return Model(init=init, loss=loss, fold=fold, predict=predict)
