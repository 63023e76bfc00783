"""The names a config may choose, in one place for the driver and the validator.

``experiments.train`` builds from these and ``experiments.validate`` checks
config fields against them; neither imports the other for them.
"""

from __future__ import annotations

from dana_jax import models
from experiments import input_pipeline

SWEEPS = ("main", "grid")

# What load_data can read: scikit-learn's digits and the tfds data sets of input_pipeline.
DATASETS = ("digits", *input_pipeline.NUM_CLASSES)

# config.model -> (config, num_classes) -> flax module.
MODELS = {
    "mlp": lambda c, k: models.MLP(tuple(c.hidden), k),
    "cnn": lambda c, k: models.SmallCNN(num_classes=k),
    "resnet": lambda c, k: models.CifarResNet(c.get("depth", 20), k),
    "wrn": lambda c, k: models.WideResNet(c.get("depth", 16), c.get("widen_factor", 4), k),
    "resnet50": lambda c, k: models.ResNet50(k),
}

AUGMENTATIONS = ("none", "crop_flip", "random_resized_crop")
