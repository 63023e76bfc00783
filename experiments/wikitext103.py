"""python -m experiments.wikitext103 [--config=.../wikitext103.py:PRESET] [--workdir DIR]"""

from experiments import main

if __name__ == "__main__":
  main.run("wikitext103")
