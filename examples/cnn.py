"""A model of your own through the experiment pipeline: a CNN with BatchNorm and Dropout.

    python -m experiments.digits --config.model=examples.cnn:make \
      --config.algorithms=ga,dana_ga --config.num_workers=4,8 --workdir runs/digits_cnn

``--config.model=package.module:factory`` takes any importable callable that is
given the number of classes and returns a flax linen module called as
``module(x, train=...)``. The engine's adapter (``dana_jax.flax_model``)
folds each ``nn.BatchNorm``'s running statistics with that layer's own
momentum and gives every dispatch its own ``dropout`` PRNG key (deterministic
per seed), so nothing else has to change.
"""

import flax.linen as nn


class BatchNormDropoutCNN(nn.Module):
  """conv 3×3 → BatchNorm → ReLU → 2×2 average pool → Dropout → dense."""
  num_classes: int
  channels: int = 16
  dropout: float = 0.2

  @nn.compact
  def __call__(self, x, train: bool = False):
    if x.ndim == 3:  # [batch, height, width]: one channel
      x = x[..., None]
    x = nn.Conv(self.channels, (3, 3))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.avg_pool(nn.relu(x), (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


def make(num_classes: int) -> nn.Module:
  return BatchNormDropoutCNN(num_classes)
