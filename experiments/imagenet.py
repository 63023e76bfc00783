"""python -m experiments.imagenet [--config=experiments/configs/imagenet.py:PRESET] [--workdir D]"""

from experiments import main

if __name__ == "__main__":
  main.run("imagenet")
