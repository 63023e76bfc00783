"""python -m experiments.cifar100 [--config=.../cifar100.py:PRESET] [--workdir DIR]"""

from experiments import main

if __name__ == "__main__":
  main.run("cifar100")
