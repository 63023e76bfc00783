"""Finding and loading an experiment's config file (``--config=PATH[:PRESET]``).

Shared by the command line (:mod:`experiments.cli`) and ``--help``
(:mod:`experiments.help_text`); a mistake is a :class:`UsageError`, one line.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pathlib

import ml_collections

CONFIGS = pathlib.Path(__file__).parent / "configs"
OPEN_GROUPS = {"algorithm_options": 1, "options_by_algorithm": 2, "timing": 1, "simulator": 1,
               "environment": 2}


class UsageError(ValueError):
  """A mistake on the command line; its message is the whole ``error:`` line."""


def usage(name: str) -> str:
  return (f"python -m experiments.{name} [--config=experiments/configs/{name}.py[:PRESET]] "
          "[--config.FIELD=VALUE ...] [--workdir=DIR] [--verbosity=LEVEL]")


def nearest(word, candidates) -> str:
  close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
  return f"did you mean {close[0]}?" if close else ""


def config_module(name: str, path_text: str | None):
  """The config file's module (the experiment's own by default)."""
  path = pathlib.Path(path_text) if path_text else CONFIGS / f"{name}.py"
  if not path.is_file() or path.suffix != ".py":
    raise UsageError(f"--config={path_text!r} is not allowed: no such .py file (the default "
                     f"is experiments/configs/{name}.py)")
  try:
    if path.resolve().parent == CONFIGS.resolve():
      module = importlib.import_module(f"experiments.configs.{path.stem}")
    else:
      spec = importlib.util.spec_from_file_location(f"user_config_{path.stem}", path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
  except Exception as e:  # a user's config file: say what failed, in one line
    raise UsageError(f"--config={path_text!r} is not allowed: importing it failed "
                     f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
  if not callable(getattr(module, "get_config", None)):
    raise UsageError(f"--config={path_text!r} is not allowed: the file defines no get_config()")
  return module


def load_config(name: str, spec: str | None):
  """(config, preset) of ``--config=PATH[:PRESET]``."""
  path_text, _, preset = (spec or "").partition(":")
  module = config_module(name, path_text or None)
  presets = read_presets(module, spec)
  if preset and not presets:
    raise UsageError(f"--config={spec!r} is not allowed: this config has no presets; drop "
                     f"':{preset}'")
  if preset and preset not in presets:
    hint = nearest(preset, presets)
    raise UsageError(f"--config={spec!r} is not allowed: preset {preset!r} does not exist; "
                     f"choose one of {list(presets)}" + (f" ({hint})" if hint else ""))
  try:
    config = module.get_config(preset) if preset else module.get_config()
  except Exception as e:  # a user's get_config: one line, not a traceback
    raise UsageError(f"--config={spec!r} is not allowed: its get_config() failed "
                     f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise UsageError(f"--config={spec!r} is not allowed: its get_config() returned a "
                     f"{type(config).__name__}, not an ml_collections.ConfigDict")
  return config, preset or None


def read_presets(module, spec) -> dict:
  """The config file's ``PRESETS`` (``{name: what}``; none: ``{}``)."""
  presets = getattr(module, "PRESETS", {})
  if not isinstance(presets, dict) or not all(isinstance(k, str) for k in presets):
    raise UsageError(f"--config={spec!r} is not allowed: its PRESETS is a "
                     f"{type(presets).__name__}, not a dict of preset name to description")
  return presets


def field_paths(config, prefix="") -> list[str]:
  """Every settable field of ``config``, dotted (open groups by their name)."""
  out = []
  for key, value in config.items():
    path = prefix + key
    if isinstance(value, ml_collections.ConfigDict) and path not in OPEN_GROUPS:
      out += field_paths(value, path + ".")
    else:
      out.append(path)
  return out
