"""python -m experiments.digits [--workdir DIR] [--config.key=value ...]"""

from absl import app, flags
from ml_collections import config_flags

from experiments import plot, train

_CONFIG = config_flags.DEFINE_config_file(
    "config", default=str(__import__("pathlib").Path(__file__).parent / "configs/digits.py"),
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/digits", "where results are written")


def main(argv):
  del argv
  train.run_sweep(_CONFIG.value, _WORKDIR.value)
  plot.main(_WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
