"""``--help`` of ``python -m experiments.<name>``: the presets, every config field, and
what each library component takes, read from the component itself (its signature,
declared checks and docstring) so that a new option needs no edit here."""

from __future__ import annotations

from experiments import builders, config_files, sweep
from experiments.fields import FIELDS, choices


def environment_help() -> list[str]:
  """``--help``'s lines for ``config.environment``: every part, its kinds and their
  arguments, from the parts themselves (``dana_jax.environment.part_arguments``)."""
  from dana_jax import environment

  lines = []
  for part, kinds in environment.ENVIRONMENT_PARTS.items():
    if part == "compute":
      continue
    for name in sorted(kinds):
      lines.append(f"  {part}" + ("" if part == "links" else f".name={name}") + ":")
      lines += [f"    {key}: {what}"
                for key, what in environment.part_arguments(part, name).items()]
  return lines


def timing_help() -> list[str]:
  """``--help``'s lines for ``config.timing``: every timing model of dana_jax and the
  arguments it takes, from the model itself (``dana_jax.timing.timing_arguments``)."""
  from dana_jax import timing
  lines = []
  for name in sorted(timing.TIMING_MODELS):
    lines.append(f"  {name}:")
    lines += [f"    {key}: {what}" for key, what in timing.timing_arguments(name).items()]
  return lines


def docstring_args(obj) -> dict[str, str]:
  """The ``Args:`` entries of ``obj``'s docstring, ``{name: text}`` on one line each (an
  entry naming several, ``a, b: ...``, gives each the text)."""
  import inspect
  import re
  doc = inspect.getdoc(obj) or ""
  section = doc.partition("Args:\n")[2].partition("\n\n")[0]
  out, names = {}, []
  for line in section.splitlines():
    entry = re.match(r"^  (\w+(?:, \w+)*): (.*)$", line)
    if entry:
      names = entry.group(1).split(", ")
      for name in names:
        out[name] = entry.group(2)
    elif line.startswith("    ") and names:
      for name in names:
        out[name] += " " + line.strip()
  return out


def simulator_help() -> list[str]:
  """``--help``'s lines for ``config.simulator``: the keywords of ``dana_jax.Simulator`` a
  sweep does not set itself, each with its docstring's description."""
  import dana_jax as dj
  described = docstring_args(dj.Simulator)
  return [f"  {key}: {described.get(key, '(see dana_jax.Simulator)')}"
          for key in builders.simulator_keywords()]


def _runs(module, preset) -> str:
  """"S simulations, D runs × K seeds" of a preset (its sweep points, counted)."""
  try:
    config = module.get_config(preset)
    points = sweep.sweep_points(config)
  except Exception:  # a preset the user has still to complete
    return "runs not counted"
  runs = sum(len(p["cells"]) for p in points)
  return f"{len(points)} simulations, {runs} runs × {len(config.seeds)} seeds"


def help_text(name: str, spec: str | None = None) -> str:
  """``--help``: usage, the config's summary, its presets (what, runs, runtime), the
  flags, and every field with its default and allowed values."""
  path_text, _, preset = (spec or "").partition(":")
  module = config_files.config_module(name, path_text or None)
  doc = (module.__doc__ or "").strip().split("\n\n")[0]
  presets = config_files.read_presets(module, spec)
  # a preset that does not exist: the error line
  config, preset = config_files.load_config(name, spec)
  lines = ["usage: " + config_files.usage(name), "", doc, ""]
  if presets:
    default = next(iter(presets))
    lines.append(f"Presets (--config=experiments/configs/{name}.py:PRESET):")
    for key, what in presets.items():
      mark = " (default)" if key == default else ""
      lines.append(f"  {key}{mark}: {what}; {_runs(module, key)}")
    lines.append("")
  lines += [
      "Flags:",
      f"  --workdir=DIR       where results go (default runs/{name}); " + getattr(
          module, "WORKDIR_HELP", "one sweep at a time; finished runs of the same "
          "configuration are skipped, an interrupted one resumes, runs of another "
          "configuration are refused (see --config.rerun_changed)"),
      "  --verbosity=LEVEL   library logging: 0 warnings (default), 1 info, 2 debug",
      "  --config.FIELD=VALUE  set a field below: tuples as 4,8 or (4, 8), empty for none",
      "  --help              this text", "",
      "Config fields (" + (f"preset {preset}" if preset else "defaults") + "; allowed values):"]
  allowed = choices()
  described = {**FIELDS, **getattr(module, "FIELDS", {})}  # a config's own fields
  for path in config_files.field_paths(config):
    node, key = config, path
    for part in path.split(".")[:-1]:
      node, key = node[part], path.split(".")[-1]
    value = node[key]
    value = value.to_dict() if hasattr(value, "to_dict") else value
    what = described.get(path, "")
    choice = allowed.get(path)
    lines.append(f"  {path} = {value!r}" + (f"  — {what}" if what else "") +
                 (f" [{', '.join(choice)}]" if choice else ""))
  if "timing" in config:
    lines += ["", "Timing models (--config.timing.name=NAME, then --config.timing.ARG=VALUE; "
              "docs/spec.md §1):", *timing_help()]
  if "environment" in config:
    lines += ["", "Environment parts (--config.environment.PART.ARG=VALUE; availability, "
              "speed, placement: also .name=NAME; docs/spec.md §8):", *environment_help()]
  if "simulator" in config:
    lines += ["", "Simulator options (--config.simulator.NAME=VALUE, as dana_jax.Simulator "
              "takes them):", *simulator_help()]
  import dana_jax as dj
  names = [a for a in dict.fromkeys([*config.get("algorithms", ()),
                                     config.get("baseline") or ""]) if a in dj.ALGORITHMS]
  if not names:  # an experiment without algorithms (the speedup model)
    return "\n".join(lines)
  lines += ["", "Algorithm options (--config.algorithm_options.NAME=VALUE for all, "
            "--config.options_by_algorithm.ALG.NAME=VALUE for one; semantics: docs/spec.md):"]
  lines += [f"  {a}: {', '.join(dj.get_algorithm(a).options()) or '(none)'}" for a in names]
  return "\n".join(lines)
