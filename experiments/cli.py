"""The command line of ``python -m experiments.<name>``: help, parsing, one-line errors.

    python -m experiments.NAME [--config=experiments/configs/NAME.py[:PRESET]]
        [--config.FIELD=VALUE ...] [--workdir=DIR] [--verbosity=LEVEL]

A mistake on the command line ends in one ``error:`` line that names the flag
or field, the value and what is allowed, exit status 1, and nothing written:
flags, presets, field names and value types are checked here before jax
starts; the experiment's fields by :mod:`experiments.validate`; what goes to
dana_jax by dana_jax (:mod:`experiments.preflight`); the work directory and
every run's memory estimate before the first run directory is made
(:func:`experiments.sweep.run_sweep`).

``config.timing`` and ``config.simulator`` are a library component's keyword
arguments, one per flag (``--config.timing.shape=2``, ``--config.simulator.execution=blocks``);
``--help`` lists what each takes from the component itself (its signature, declared
checks and docstring), and the library checks the values.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import pathlib

import ml_collections

from experiments import fields, help_text
from experiments.config_files import (
    OPEN_GROUPS,
    UsageError,
    field_paths,
    load_config,
    nearest,
)

FLAGS = ("config", "workdir", "verbosity")
HELP = ("help", "h", "helpfull", "helpshort")
# Fields whose values are open dicts: one key per flag, --config.algorithm_options.NAME=VALUE.
# timing and simulator hold a library component's keyword arguments (experiments.builders).
# Groups a flag may set whole by a name: --config.timing=NAME is --config.timing.name=NAME.
NAMED_GROUPS = {"timing": "name"}


@dataclasses.dataclass
class Args:
  config: ml_collections.ConfigDict
  preset: str | None
  workdir: pathlib.Path
  verbosity: int


def _text(arg) -> str:
  """An argument as text: valid UTF-8 (bytes a non-UTF-8 locale left undecoded are decoded
  as UTF-8 where they are), without NUL characters."""
  if not isinstance(arg, str):
    raise UsageError(f"{arg!r} is not allowed: every argument is text, --FLAG=VALUE")
  try:
    arg.encode("utf-8")
  except UnicodeEncodeError:  # surrogate escapes: bytes the locale could not decode
    try:
      arg = os.fsencode(arg).decode("utf-8")
    except UnicodeError:
      raise UsageError(f"{ascii(arg)} is not allowed: an argument must be valid UTF-8 "
                       "text") from None
  if "\0" in arg:
    raise UsageError(f"{arg!r} is not allowed: an argument cannot hold a NUL character")
  return arg


def split(argv: list[str]) -> list[tuple[str, str | None]]:
  """``[(flag name, value)]`` of ``--name=value`` / ``--name value``; help flags get None."""
  out, i = [], 0
  argv = [_text(arg) for arg in argv]
  while i < len(argv):
    arg = argv[i]
    if not arg.startswith("-") or arg in ("-", "--"):
      raise UsageError(f"{arg!r} is not a flag: every argument is --FLAG=VALUE")
    name, eq, value = arg.lstrip("-").partition("=")
    i += 1
    if name in HELP:
      out.append(("help", None))
      continue
    if not arg.startswith("--") or not name:
      raise UsageError(f"{arg!r} is not a flag: every argument is --FLAG=VALUE (two dashes)")
    if not eq:
      if i >= len(argv) or argv[i].startswith("--"):
        raise UsageError(f"--{name} needs a value: --{name}=VALUE")
      value, i = argv[i], i + 1
    out.append((name, value))
  return out


def literal(text: str):
  """A value as Python reads it (1, 0.5, True, None, (4, 8), 'max'); anything else a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):  # ((((… too deep
    return text


def _optional(node, key) -> bool:
  """Whether a field may be None: a typed reference (``FieldReference(None, field_type=…)``)
  or a field whose default is None."""
  ref = getattr(node, "_fields", {}).get(key)
  return isinstance(ref, ml_collections.FieldReference) or node[key] is None


def parse_value(field: str, text: str, kind, default, optional: bool):
  """``text`` as a value of the field's type, or a UsageError saying what was expected."""
  def bad(expected):
    return UsageError(f"config.{field}={text!r} is not allowed: need {expected} "
                      f"(default {default!r})")
  empty = text.strip() in ("", "None", "none")
  if kind in (tuple, list):  # 4,8 or (4, 8); ga,dana_ga; empty: ()
    value = literal(text) if text.strip() else ()
    if isinstance(value, str):
      value = tuple(literal(v.strip()) for v in text.split(",") if v.strip())
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, (bool, int, float, str, type(None))) for v in value):
      raise bad("a tuple of numbers or names, e.g. 4,8 or ga,dana_ga")
    return value
  if kind is str:
    if optional and text.strip() in ("None", "none"):
      return None
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    return text[1:-1] if quoted else text  # --config.dataset='digits' as typed in a shell
  if empty:
    if optional:
      return None
    raise bad({bool: "true or false", int: "an integer", float: "a number"}.get(
        kind, "a value"))
  if kind is bool:
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise bad("true or false")
  if kind is int:
    try:
      return int(text)
    except ValueError:
      raise bad("an integer" + (" or empty (None)" if optional else "")) from None
  if kind is float:
    try:
      return float(text)
    except ValueError:
      raise bad("a number" + (" or empty (None)" if optional else "")) from None
  return literal(text)


def option_value(path: str, text: str):
  """An algorithm option's value: a number, true/false, None, a string ("max", "0.9*N") or a
  tuple of those; what each option allows is the algorithm's to check."""
  value = literal(text)
  if text.strip().lower() in ("inf", "+inf", "infinity"):  # a bandwidth, an MTBF: none
    return float("inf")
  if path.split(".")[0] in NAMED_GROUPS or path.startswith(("simulator.", "environment.")):
    if text.strip() in ("", "None", "none"):  # a keyword argument at its default
      return None
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    if quoted:  # --config.timing='heterogeneous' as typed in a shell
      return text[1:-1]
  if path.startswith("options_by_algorithm.") and path.endswith((".learning_rate",
                                                                 ".momentum")):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
      raise UsageError(f"config.{path}={text!r} is not allowed: need a number (this "
                       "algorithm's own η or γ)")
    return float(value)
  if text.strip().lower() in ("true", "false"):
    return text.strip().lower() == "true"
  scalar = (bool, int, float, str, type(None))
  if isinstance(value, (list, tuple)) and all(isinstance(v, scalar) for v in value):
    return tuple(value)
  if not isinstance(value, scalar):
    raise UsageError(f"config.{path}={text!r} is not allowed: an option's value is a number, "
                     "true or false, a name or a tuple of those")
  return value


def override(config, path: str, text: str) -> None:
  """Sets ``config.<path>`` from ``--config.<path>=text``."""
  parts = path.split(".")
  if parts[0] in fields.GONE:
    raise UsageError(fields.gone_message(parts[0]))
  if len(parts) == 1 and parts[0] in NAMED_GROUPS:
    parts.append(NAMED_GROUPS[parts[0]])
  group = OPEN_GROUPS.get(parts[0])
  if group is not None:
    if len(parts) != group + 1:
      shape = ".NAME" if group == 1 else ".ALGORITHM.NAME"
      raise UsageError(f"config.{path} is not allowed: set one option per flag, "
                       f"--config.{parts[0]}{shape}=VALUE")
    node = config[parts[0]]
    for key in parts[1:-1]:
      if key not in node:
        node[key] = ml_collections.ConfigDict()
      node = node[key]
    if parts[-1] in node:  # an option's value may change type (a preset's "1*N" for 8)
      del node[parts[-1]]
    node[parts[-1]] = option_value(".".join(parts), text)
    return
  node = config
  for i, key in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or key not in node:
      hint = nearest(path, field_paths(config))
      raise UsageError(f"config.{path} is not a field of this config" +
                       (f": {hint.replace('mean ', 'mean config.')}" if hint else "") +
                       " (--help lists the fields)")
    if i < len(parts) - 1:
      node = node[key]
  field = parts[-1]
  if isinstance(node[field], ml_collections.ConfigDict):
    inner = ", ".join(f"config.{path}.{k}" for k in node[field])
    raise UsageError(f"config.{path} is a group of fields: set {inner} one by one")
  kind = node.get_type(field)
  value = parse_value(path, text, kind, node[field], _optional(node, field))
  try:
    node[field] = value
  except TypeError:
    raise UsageError(f"config.{path}={text!r} is not allowed: need a {kind.__name__} "
                     f"(default {node[field]!r})") from None


def parse(name: str, argv: list[str]) -> Args | None:
  """The command line ``argv`` (without the program); None: help was asked for (printed)."""
  pairs = split(argv)
  if any(n == "help" for n, _ in pairs):
    print(help_text.help_text(name, dict(pairs).get("config")))
    return None
  spec = None
  for flag, value in pairs:
    if flag == "config":
      spec = value
  config, preset = load_config(name, spec)
  for flag, _ in pairs:  # after the config: an unknown flag may be a field without config.
    if not flag.startswith("config.") and flag not in FLAGS:
      hint = _flag_hint(flag, config)
      raise UsageError(f"--{flag} is not a flag of experiments.{name}: the flags are --config, "
                       "--config.FIELD, --workdir and --verbosity" + (f" ({hint})" if hint
                                                                       else ""))
  workdir, verbosity = f"runs/{name}", 0
  for flag, value in pairs:
    if flag.startswith("config."):
      override(config, flag[len("config."):], value)
    elif flag == "workdir":
      if not value.strip():
        raise UsageError(f"--workdir={value!r} is not allowed: give a directory")
      workdir = value
    elif flag == "verbosity":
      if value not in ("0", "1", "2"):
        raise UsageError(f"--verbosity={value!r} is not allowed: 0 (warnings, the default), "
                         "1 (info) or 2 (debug)")
      verbosity = int(value)
  try:
    workdir = pathlib.Path(workdir).expanduser()
  except RuntimeError as e:  # ~user that does not exist, or no home directory
    raise UsageError(f"--workdir={workdir!r} is not allowed: cannot expand '~' ({e})") from None
  return Args(config, preset, workdir, verbosity)


def _flag_hint(flag: str, config) -> str:
  """"did you mean …?" for an unknown flag: the field it names without ``config.``
  (--epochs: --config.epochs; --workers: --config.num_workers), else the nearest flag."""
  paths = field_paths(config)
  if flag in paths:
    return f"did you mean --config.{flag}?"
  ends = [p for p in paths if p.endswith(("_" + flag, "." + flag))]
  if len(ends) == 1:
    return f"did you mean --config.{ends[0]}?"
  close = difflib.get_close_matches(flag, list(FLAGS) + [f"config.{p}" for p in paths], n=1,
                                    cutoff=0.6)
  return f"did you mean --{close[0]}?" if close else ""
