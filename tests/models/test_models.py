"""The model zoo and the model adapter: sizes match the papers; flax_model against flax
itself and hand-written losses (BatchNorm folding with each layer's own momentum, PRNG keys
per dispatch, losses other than classification)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
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




class _TwoNorms(nn.Module):
  """Dense-BN-ReLU-Dense-BN-Dense with the two BatchNorm layers at different momenta."""

  momenta: tuple = (0.9, 0.99)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape((x.shape[0], -1))
    for m in self.momenta:
      x = nn.Dense(6)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=m)(x))
    return nn.Dense(3)(x)


class _Nested(nn.Module):
  """A BatchNorm inside a submodule, plus one at the top, momentum passed at call time."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = _TwoNorms(momenta=(0.8,))(x, train)
    return nn.BatchNorm(momentum=0.95)(x, use_running_average=not train)


def flax_update(module, params, stats, x):
  """flax's own running-statistics update for one training batch."""
  _, mutated = module.apply({"params": params, "batch_stats": stats}, x, train=True,
                            mutable=["batch_stats"])
  return mutated["batch_stats"]


def perturbed(stats, seed):
  """Non-trivial running statistics (positive, so variances stay valid)."""
  leaves, tree = jax.tree_util.tree_flatten(stats)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree_util.tree_unflatten(
      tree, [s + jax.random.uniform(k, s.shape, s.dtype, 0.1, 2.0) for s, k in zip(leaves, keys)])


@pytest.mark.parametrize("module,shape", [
    (models.SmallCNN(channels=(4,), hidden=8, bn_momentum=0.9), (8, 8)),
    (models.SmallCNN(channels=(4, 4), hidden=8, bn_momentum=0.99), (8, 8)),
    (_TwoNorms(), (5,)),
    (_Nested(), (5,)),
], ids=["momentum-0.9", "momentum-0.99", "two-layers-0.9-0.99", "nested-0.8-0.95"])
def test_fold_is_bitwise_flax_update_with_each_layers_momentum(module, shape):
  model = dj.flax_model(module, shape)
  params, stats = model.init(jax.random.key(0))
  stats = perturbed(stats, 1)
  x = jax.random.normal(jax.random.key(2), (6,) + shape)
  _, contribution = model.loss(params, x, jnp.zeros(6, jnp.int32), jax.random.key(3))
  ours = model.fold(stats, contribution)
  theirs = flax_update(module, params, stats, x)
  assert jax.tree.structure(ours) == jax.tree.structure(theirs)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(ours),
                          jax.tree_util.tree_leaves(theirs), strict=True):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  # Teeth: the statistics moved, and one shared momentum would not reproduce them.
  wrong = jax.tree.map(lambda r, c: 0.5 * r + c, stats, contribution)
  for a, b in zip(jax.tree_util.tree_leaves(wrong), jax.tree_util.tree_leaves(theirs)):
    assert not np.allclose(a, b)


def test_two_layers_get_their_own_momentum():
  """The second layer's statistics decay with 0.99, the first's with 0.9."""
  model = dj.flax_model(_TwoNorms(), (5,))
  params, stats = model.init(jax.random.key(0))
  stats = perturbed(stats, 1)
  zero = jax.tree.map(jnp.zeros_like, stats)
  folded = model.fold(stats, zero)
  np.testing.assert_array_equal(folded["BatchNorm_0"]["mean"], 0.9 * stats["BatchNorm_0"]["mean"])
  np.testing.assert_array_equal(folded["BatchNorm_1"]["var"], 0.99 * stats["BatchNorm_1"]["var"])


class _SharedNorm(nn.Module):
  """One BatchNorm applied twice in a forward pass: flax updates its statistics twice."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = nn.BatchNorm(use_running_average=not train, momentum=0.7)
    return nn.Dense(2)(norm(nn.Dense(4)(norm(x))))


def test_layer_called_twice_folds_like_two_flax_updates():
  model = dj.flax_model(_SharedNorm(), (4,))
  params, stats = model.init(jax.random.key(0))
  stats = perturbed(stats, 1)
  x = jax.random.normal(jax.random.key(2), (6, 4))
  _, contribution = model.loss(params, x, jnp.zeros(6, jnp.int32), None)
  theirs = flax_update(_SharedNorm(), params, stats, x)
  for a, b in zip(jax.tree_util.tree_leaves(model.fold(stats, contribution)),
                  jax.tree_util.tree_leaves(theirs), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6)


class _FrozenNorm(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.Dense(2)(nn.BatchNorm(use_running_average=True)(x))


def test_batch_norm_frozen_in_training_is_refused():
  with pytest.raises(ValueError, match="BatchNorm_0.*running average in training"):
    dj.flax_model(_FrozenNorm(), (4,))


class _DropoutNet(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Dense(32)(x.reshape((x.shape[0], -1))))
    x = nn.Dropout(rate=0.5, deterministic=not train)(x)
    return nn.Dense(3)(x)


def test_dropout_uses_the_dispatch_key():
  model = dj.flax_model(_DropoutNet(), (5,))
  params, _ = model.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (8, 5))
  y = jnp.arange(8) % 3
  loss = jax.jit(lambda key: model.loss(params, x, y, key)[0])
  a, b, a_again = loss(jax.random.key(10)), loss(jax.random.key(11)), loss(jax.random.key(10))
  assert a != b
  assert a == a_again
  # The dropout stream is fold_in(key, 0): flax's own apply with that rng agrees.
  logits = _DropoutNet().apply({"params": params}, x, train=True,
                               rngs={"dropout": jax.random.fold_in(jax.random.key(10), 0)})
  np.testing.assert_allclose(a, optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
                             rtol=1e-6)
  # Evaluation is deterministic: no key, no dropout.
  full = model.predict(params, {}, x)
  np.testing.assert_allclose(full, _DropoutNet().apply({"params": params}, x), rtol=1e-6)


class _TwoStreams(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    a = jax.random.normal(self.make_rng("dropout"), (x.shape[0],))
    b = jax.random.normal(self.make_rng("noise"), (x.shape[0],))
    return jnp.stack([a, b], -1) + nn.Dense(1)(x)


def test_each_rng_name_gets_its_own_stream():
  model = dj.flax_model(_TwoStreams(), (3,), rng_names=("dropout", "noise"),
                            loss=lambda o, y: o[:, 0] - o[:, 1])
  params, _ = model.init(jax.random.key(0))
  value, _ = model.loss(params, jnp.zeros((4, 3)), jnp.zeros(4), jax.random.key(5))
  assert abs(float(value)) > 1e-3  # identical streams would cancel exactly


class _Regressor(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    hidden = nn.tanh(nn.Dense(8)(x))
    return nn.Dense(1)(hidden)[:, 0]


def test_regression_with_mse():
  mse = lambda outputs, targets: jnp.square(outputs - targets)
  model = dj.flax_model(_Regressor(), (3,), loss=mse)
  params, state = model.init(jax.random.key(0))
  assert state == {}
  x = jax.random.normal(jax.random.key(1), (7, 3))
  y = jax.random.normal(jax.random.key(2), (7,))
  value, contribution = model.loss(params, x, y, jax.random.key(3))
  assert contribution == {}
  p = jax.tree.map(np.asarray, params)
  hidden = np.tanh(np.asarray(x) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
  out = hidden @ p["Dense_1"]["kernel"][:, 0] + p["Dense_1"]["bias"][0]
  np.testing.assert_allclose(value, np.mean((out - np.asarray(y)) ** 2), rtol=1e-5)
  np.testing.assert_allclose(model.predict(params, state, x), out, rtol=1e-5, atol=1e-6)
  metrics = model.metrics(model.predict(params, state, x), y)
  assert set(metrics) == {"loss"}
  np.testing.assert_allclose(metrics["loss"], (out - np.asarray(y)) ** 2, rtol=1e-4, atol=1e-7)
  grads = jax.grad(lambda q: model.loss(q, x, y, None)[0])(params)  # trains through it
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


class _TokenModel(nn.Module):
  vocab: int = 11

  @nn.compact
  def __call__(self, tokens, train: bool = False):
    del train
    return nn.Dense(self.vocab)(nn.Embed(self.vocab, 6)(tokens))


def per_token_xent(logits, labels):
  """Cross-entropy per token, averaged per example: [B, L, V], [B, L] -> [B]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(-1)


def test_sequence_model_with_per_token_cross_entropy():
  model = dj.flax_model(_TokenModel(), (5,), loss=per_token_xent, input_dtype=jnp.int32)
  params, state = model.init(jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(1), (4, 5), 0, 11)
  targets = jnp.roll(tokens, -1, axis=1)
  value, _ = model.loss(params, tokens, targets, jax.random.key(2))
  # By hand: embedding lookup, dense layer, log-softmax, mean over tokens, then examples.
  emb = np.asarray(params["Embed_0"]["embedding"])[np.asarray(tokens)]
  logits = emb @ np.asarray(params["Dense_0"]["kernel"]) + np.asarray(params["Dense_0"]["bias"])
  logits = logits - logits.max(-1, keepdims=True)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_probs, np.asarray(targets)[..., None], -1)[..., 0]
  np.testing.assert_allclose(value, nll.mean(), rtol=1e-5)
  metrics = model.metrics(model.predict(params, state, tokens), targets)
  np.testing.assert_allclose(metrics["loss"], nll.mean(-1), rtol=1e-5)


def test_custom_metrics_are_used_and_classification_keeps_engine_default():
  assert dj.flax_model(models.MLP((4,)), (8, 8)).metrics is None
  mine = lambda o, y: {"abs": jnp.abs(o - y)}
  model = dj.flax_model(_Regressor(), (3,), loss=lambda o, y: (o - y) ** 2, metrics=mine)
  assert model.metrics is mine


def test_loss_that_is_not_per_example_is_named():
  model = dj.flax_model(_Regressor(), (3,), loss=lambda o, y: jnp.mean((o - y) ** 2))
  params, _ = model.init(jax.random.key(0))
  with pytest.raises(ValueError, match=r"per-example loss, shape \(7,\)"):
    model.loss(params, jnp.zeros((7, 3)), jnp.zeros(7), None)


def _simulate(model, x, y, seed, steps=24, **kwargs):

  sim = dj.Simulator(model, "dana_ga", x, y, num_workers=3, batch_size=8, seeds=seed,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 0.0), **kwargs)
  return dj.simulate(sim, steps, chunk_steps=8, eval_data=(x, y), progress=False)


def test_dropout_through_the_engine_is_deterministic_per_seed():
  from jax.flatten_util import ravel_pytree

  x = np.asarray(jax.random.normal(jax.random.key(1), (64, 5)))
  y = np.asarray(jax.random.randint(jax.random.key(2), (64,), 0, 3), np.int32)
  model = dj.flax_model(_DropoutNet(), (5,))
  runs = [ravel_pytree(_simulate(model, x, y, s, execution=e).state.params)[0]
          for s, e in ((0, "steps"), (0, "steps"), (1, "steps"), (0, "blocks"))]
  np.testing.assert_array_equal(runs[0], runs[1])  # same seed, same dropout masks
  assert not np.allclose(runs[0], runs[2])  # another seed: other masks (and data order)
  np.testing.assert_allclose(runs[0], runs[3], rtol=1e-5, atol=1e-6)  # keys per dispatch


def test_regression_and_sequence_models_simulate_and_evaluate_their_own_loss():
  mse = lambda outputs, targets: jnp.square(outputs - targets)
  x = np.asarray(jax.random.normal(jax.random.key(1), (64, 3)), np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
  result = _simulate(dj.flax_model(_Regressor(), (3,), loss=mse), x, y, 0, steps=64)
  first, last = result.history[0]["replicas"][0], result.history[-1]["replicas"][0]
  assert "test/error" not in last and last["test/loss"] < first["test/loss"]
  model = dj.flax_model(_Regressor(), (3,), loss=mse)
  state = result.state
  np.testing.assert_allclose(
      last["test/loss"], np.mean((np.asarray(model.predict(state.params, {}, x)) - y) ** 2),
      rtol=1e-5)
  tokens = np.asarray(jax.random.randint(jax.random.key(3), (64, 5), 0, 11), np.int32)
  seq = dj.flax_model(_TokenModel(), (5,), loss=per_token_xent, input_dtype=jnp.int32)
  out = _simulate(seq, tokens, np.roll(tokens, -1, axis=1), 0, steps=16)
  assert np.isfinite(out.history[-1]["replicas"][0]["test/loss"])
