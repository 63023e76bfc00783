"""The adapter that turns a flax linen module into the engine's :class:`Model`.

BatchNorm running statistics belong to the master (docs/spec.md §1): a worker's
training forward pass yields its batch's *contribution* (1 − m)·stat, obtained
by running the module with zeroed running statistics, and the master folds it
in at arrival: running ← m·running + contribution, m being each BatchNorm
layer's own momentum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dana_jax._checks import is_int, require
from dana_jax.engine.core import Model
from dana_jax.errors import ConfigError

# A loss's per-example values: ``loss(outputs, labels) -> [B]``.
LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _classification_loss(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _as_float64(tree):
  """float32 leaves as float64 (other dtypes, e.g. bfloat16 or integers, kept)."""
  return jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, tree)


class _BatchNormCalls(NamedTuple):
  momentum: Any   # the layer's own m
  calls: int      # times the layer runs in one training forward pass


def _batch_norm_calls(module, init, input_shape, input_dtype, rngs_for):
  """Every ``nn.BatchNorm`` of ``module``: path -> (momentum, calls in one training pass).

  Found once, abstractly (``jax.eval_shape``), by intercepting the layers'
  ``__call__`` at init and in a training forward pass.
  """
  found: dict[tuple[str, ...], _BatchNormCalls] = {}
  frozen: list[str] = []
  training = []  # empty while initialising: there every layer is only recorded

  def interceptor(next_fun, args, kwargs, context):
    layer = context.module
    if isinstance(layer, nn.BatchNorm) and context.method_name == "__call__":
      path = tuple(layer.path)
      previous = found.get(path, _BatchNormCalls(layer.momentum, 0))
      use_running_average = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
      if use_running_average is None:
        use_running_average = layer.use_running_average
      if training and use_running_average:
        frozen.append("/".join(path))
      found[path] = previous._replace(calls=previous.calls + bool(training))
    return next_fun(*args, **kwargs)

  def probe(key):
    with nn.intercept_methods(interceptor):
      params, stats = init(key)
      training.append(True)
      module.apply({"params": params, "batch_stats": stats},
                   jnp.zeros((2,) + tuple(input_shape), input_dtype), train=True,
                   mutable=["batch_stats"], rngs=rngs_for(key))

  jax.eval_shape(probe, jax.random.key(0))
  if frozen:
    raise ConfigError(
        f"flax_model: the BatchNorm layers {sorted(set(frozen))} use their running average "
        "in training (use_running_average=True with train=True); that is not supported: "
        "a worker's forward pass does not see the master's running statistics (docs/spec.md §1).")
  return found


def flax_model(module: nn.Module, input_shape: Sequence[int], *,
               loss: LossFn | None = None,
               metrics: Callable[[jax.Array, jax.Array], dict] | None = None,
               rng_names: Sequence[str] = ("dropout",),
               input_dtype: Any = None) -> Model:
  """Wraps a flax linen module ``module(x, train=...)`` as an engine :class:`Model`.

  BatchNorm: the training pass runs with zeroed running statistics, so each
  ``nn.BatchNorm`` writes its contribution (1 − m)·stat; ``fold`` computes
  running ← m·running + contribution with *that layer's own* momentum m (its
  ``momentum`` attribute, found once at construction), which is bitwise
  flax's own update. A layer called k times in one forward pass folds with
  m^k (equal to flax's k successive updates up to rounding).

  Args:
    module: a linen module; may contain ``nn.BatchNorm`` layers with any
      momenta (running statistics in the ``batch_stats`` collection).
    input_shape: shape of one example (without the batch axis).
    loss: ``loss(outputs, labels) -> per-example loss [B]``; the training loss
      is its mean. Default: softmax cross-entropy with integer labels.
    metrics: ``metrics(outputs, labels) -> {name: per-example values [B]}``
      for evaluation. Default: the engine's classification metrics (loss and
      error) with the default loss, ``{"loss": loss(outputs, labels)}`` with a
      custom one.
    rng_names: the module's PRNG streams (e.g. ``"dropout"``); the i-th name
      gets ``fold_in(key, i)`` of the engine's key for the dispatch.
    input_dtype: dtype of the dummy input at init (e.g. ``jnp.int32`` for
      token ids); default the default float dtype (float64 under
      ``jax_enable_x64``).

  Returns:
    A :class:`~dana_jax.engine.Model`. Under ``jax_enable_x64`` its float32
    parameters and statistics are initialised as float64.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> import dana_jax
    >>> from dana_jax import models
    >>> model = dana_jax.flax_model(models.SmallCNN(channels=(4,), hidden=8), (8, 8))
    >>> params, stats = model.init(jax.random.key(0))
    >>> value, contribution = model.loss(params, jnp.ones((2, 8, 8)), jnp.zeros(2, int),
    ...                                  jax.random.key(1))
    >>> stats = model.fold(stats, contribution)
  """
  require(isinstance(module, nn.Module), "module", type(module).__name__,
          "need a flax linen module (flax.linen.Module)")
  require(isinstance(input_shape, Sequence) and not isinstance(input_shape, str)
          and all(is_int(d, 1) for d in input_shape), "input_shape", input_shape,
          "need one example's shape, a sequence of integers ≥ 1 (no batch axis)")
  for field, fn in (("loss", loss), ("metrics", metrics)):
    require(fn is None or callable(fn), field, type(fn).__name__, "need a callable or None")
  rng_names = tuple(rng_names)
  float_dtype = jnp.result_type(float)  # float32, or float64 under jax_enable_x64
  input_dtype = float_dtype if input_dtype is None else input_dtype
  loss_fn = _classification_loss if loss is None else loss
  if metrics is None and loss is not None:
    metrics = lambda outputs, labels: {"loss": loss_fn(outputs, labels)}

  def rngs_for(key):
    if key is None or not rng_names:
      return None
    return {name: jax.random.fold_in(key, stream) for stream, name in enumerate(rng_names)}

  def init(key):
    variables = module.init(key, jnp.zeros((1,) + tuple(input_shape), input_dtype), train=False)
    params, stats = variables["params"], variables.get("batch_stats", {})
    if float_dtype == jnp.float64:
      params, stats = _as_float64(params), _as_float64(stats)
    return params, stats

  # Running statistics: their shapes (for the zeroed copy in ``loss``) and, per
  # leaf, the decay m^calls of the BatchNorm layer that owns it.
  _, stats_shape = jax.eval_shape(init, jax.random.key(0))
  has_stats = bool(jax.tree_util.tree_leaves(stats_shape))
  layers = _batch_norm_calls(module, init, input_shape, input_dtype, rngs_for) if has_stats \
      else {}
  decay = {}  # None: a layer that does not run in training, never updated
  for path, _ in jax.tree_util.tree_flatten_with_path(stats_shape)[0]:
    names = _names(path)
    if names[:-1] not in layers:
      raise ConfigError(
          f"flax_model: batch_stats/{'/'.join(names)} is not a running statistic of an "
          "nn.BatchNorm called directly in the module (a custom statistic, or a BatchNorm "
          "inside a lifted transform); its fold is unknown.")
    layer = layers[names[:-1]]
    decay[names] = (None if layer.calls == 0 else
                    layer.momentum if layer.calls == 1 else layer.momentum ** layer.calls)

  def loss_and_contribution(params, inputs, labels, key):
    rngs = rngs_for(key)
    if has_stats:
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stats_shape)
      outputs, mutated = module.apply({"params": params, "batch_stats": zeros}, inputs,
                                      train=True, mutable=["batch_stats"], rngs=rngs)
      contribution = mutated["batch_stats"]
    else:
      outputs, contribution = module.apply({"params": params}, inputs, train=True,
                                           rngs=rngs), {}
    per_example = loss_fn(outputs, labels)
    if per_example.shape != (inputs.shape[0],):
      raise ConfigError(f"flax_model: loss(outputs, labels) has shape {per_example.shape}; "
                       f"it must be the per-example loss, shape ({inputs.shape[0]},).")
    return per_example.mean(), contribution

  def fold(model_state, contribution):
    def one(path, r, c):
      m = decay[_names(path)]
      return r if m is None else m * r + c
    return jax.tree_util.tree_map_with_path(one, model_state, contribution)

  def predict(params, model_state, inputs):
    variables = {"params": params}
    if has_stats:
      variables["batch_stats"] = model_state
    return module.apply(variables, inputs, train=False)

  return Model(init=init, loss=loss_and_contribution, fold=fold, predict=predict,
               metrics=metrics)


def _names(path) -> tuple[str, ...]:
  """A pytree key path of nested dicts as a tuple of names."""
  return tuple(str(getattr(k, "key", k)) for k in path)
