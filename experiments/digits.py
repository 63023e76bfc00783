"""python -m experiments.digits [--workdir DIR] [--config.key=value ...]"""

from experiments import main

if __name__ == "__main__":
  main.run("digits")
