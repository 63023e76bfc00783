"""python -m experiments.cifar10 [--config=experiments/configs/cifar10.py:PRESET] [--workdir DIR]"""

from experiments import main

if __name__ == "__main__":
  main.run("cifar10")
