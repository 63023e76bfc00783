"""The names a config may choose, in one place for the driver and the validator.

``experiments.builders`` builds from these and ``experiments.validate`` checks
config fields against them; neither imports the other for them.
"""

from __future__ import annotations

from dana_jax import models, transformer
from experiments import input_pipeline

SWEEPS = ("main", "grid")

# Text corpora (experiments.text): byte-level next-token windows, a language model.
TEXT_DATASETS = ("foldoc", "wikitext103")
# What load_data can read: scikit-learn's digits, the tfds data sets of input_pipeline, text.
DATASETS = ("digits", *input_pipeline.NUM_CLASSES, *TEXT_DATASETS)

# config.model -> (config, num_classes) -> flax module.
MODELS = {
    "mlp": lambda c, k: models.MLP(tuple(c.hidden), k),
    "cnn": lambda c, k: models.SmallCNN(num_classes=k),
    "resnet": lambda c, k: models.CifarResNet(c.get("depth", 20), k),
    "wrn": lambda c, k: models.WideResNet(c.get("depth", 16), c.get("widen_factor", 4), k),
    "resnet50": lambda c, k: models.ResNet50(k),
    "transformer": lambda c, k: transformer.DecoderLM(
        vocab_size=k, width=c.get("width", 64), depth=c.get("depth", 2),
        heads=c.get("heads", 4), max_len=c.get("window", 64),
        positions=c.get("positions", "learned"), dropout=c.get("dropout", 0.0)),
}

AUGMENTATIONS = ("none", "crop_flip", "random_resized_crop")


class ModelError(ValueError):
  """``config.model`` names no built-in model and no importable factory."""


def _takes_one_argument(factory) -> str | None:
  """None if ``factory(num_classes)`` binds; otherwise why not (its signature)."""
  import inspect
  try:
    signature = inspect.signature(factory)
  except (TypeError, ValueError):  # a builtin without a signature: assume it fits
    return None
  try:
    signature.bind(10)
  except TypeError:
    return f"its signature is {getattr(factory, '__name__', 'factory')}{signature}"
  return None


def model_factory(name: str):
  """``(config, num_classes) -> flax module`` of ``config.model``: a name of ``MODELS``, or
  ``package.module:factory`` — a callable of the number of classes returning a flax
  module that is called as ``module(x, train=...)`` (the adapter ``dana_jax.flax_model``).
  A factory that cannot be called with one argument is refused here, before any data
  is loaded; what it raises when called is :func:`experiments.builders.build_model`'s to say."""
  if name in MODELS:
    return MODELS[name]
  module_name, colon, attr = str(name).partition(":")
  if not colon or not module_name or not attr:
    raise ModelError(f"config.model={name!r} is not allowed: choose one of {sorted(MODELS)}, "
                     "or give your own as package.module:factory")
  import importlib
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ModelError(f"config.model={name!r} is not allowed: cannot import {module_name!r} "
                     f"({e}); it must be importable from the working directory or "
                     "PYTHONPATH") from None
  except Exception as e:  # importing a user's module runs its code
    raise ModelError(f"config.model={name!r} is not allowed: importing {module_name!r} "
                     f"raised {type(e).__name__}: {(str(e).splitlines() or [''])[0]}") from None
  factory = getattr(module, attr, None)
  if not callable(factory):
    raise ModelError(f"config.model={name!r} is not allowed: {module_name!r} has no callable "
                     f"{attr!r}")
  why = _takes_one_argument(factory)
  if why is not None:
    raise ModelError(f"config.model={name!r} is not allowed: a factory is called with one "
                     f"argument, the number of classes, and {why}")
  return lambda config, num_classes: factory(num_classes)
