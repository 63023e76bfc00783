"""The GA paper's CIFAR-100 experiments: the presets of ``configs/cifar10.py`` on CIFAR-100.

    python -m experiments.cifar100 --config=experiments/configs/cifar100.py:main

Not yet run with this code (no GPU and no CIFAR data where it was written).
"""

from experiments.configs import cifar10

PRESETS = {name: what.replace("(Fig.", "on CIFAR-100 (Fig.")
           for name, what in cifar10.PRESETS.items()}


def get_config(preset: str = "main"):
  return cifar10.get_config(preset, dataset="cifar100")
