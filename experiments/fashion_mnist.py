"""python -m experiments.fashion_mnist [--workdir DIR] [--config.key=value ...]"""

from experiments import main

if __name__ == "__main__":
  main.run("fashion_mnist")
