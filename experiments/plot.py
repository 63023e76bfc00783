"""A sweep's report — ``results.md`` and every figure — drawn from its run files only.

    python -m experiments.plot RESULTS_DIR [--target-points P | --target-error E]
        [--beside OTHER_DIR]                                      (--help: what it writes)

The pieces live by name: :mod:`experiments.runfiles` reads the files,
:mod:`experiments.tables` writes the tables, :mod:`experiments.figures` draws;
this module puts them together and re-exports them, so ``plot.error_table``
and ``plot.plot_lag`` are where they always were.
"""

from __future__ import annotations

import json
import pathlib
import sys

from experiments.algorithm_display import colour, ordered
from experiments.figures import (
  environment_label,
  lag_distribution,
  per_epoch,
  plot_environments,
  plot_error_vs_time,
  plot_error_vs_workers,
  plot_gamma_densities,
  plot_grid_heatmap,
  plot_lag,
  plot_per_epoch,
  plot_speedup,
)
from experiments.runfiles import (
  MEAN_BATCH_TIME,
  error_against_time,
  evaluations,
  final_values,
  load_metrics,
  load_summaries,
  run_dirs,
)
from experiments.tables import (
  cost_table,
  error_table,
  failed_mark,
  grid_accuracy,
  grid_table,
  outcome_table,
  time_to_target,
  time_to_target_table,
  worker_error_table,
)

REPORT_FIELDS = ("dataset", "model", "hidden", "algorithms", "baseline", "num_workers", "seeds",
                 "epochs", "batch_size", "learning_rate", "momentum", "weight_decay", "timing",
                 "worker_speed_shape", "execution")


def report_header(results_dir, summaries) -> str:
  """What was run: the command(s), the sweep's main config fields, device and versions,
  and the runtime (the sum of the simulations' wall times), from the run files."""
  results_dir = pathlib.Path(results_dir)
  configs = sorted(results_dir.glob("*/config.json"))
  config = json.loads(configs[0].read_text()) if configs else {}
  commands = sorted({s["command"] for s in summaries if s.get("command")})
  environments = sorted({json.dumps({k: v for k, v in s["environment"].items()
                                     if k != "finished"}, sort_keys=True)
                         for s in summaries if s.get("environment")})
  finished = sorted(s["environment"]["finished"] for s in summaries if s.get("environment"))
  # One wall time per simulation: the cells of a grid simulation share theirs.
  walls = {(s["algorithm"], s["num_workers"]): s["wall_seconds"] for s in summaries
           if "wall_seconds" in s}
  lines = [f"# {config.get('dataset', results_dir.name)}: {results_dir.name}", ""]
  unrecorded = ("a command not recorded in its files (older runs; `results/README.md` "
                "gives the command of each committed sweep)")
  lines.append("- Run with " + (", ".join(f"`{c}`" for c in commands) if commands
                             else unrecorded) + ".")
  per_run = {"num_workers", "learning_rate", "momentum"}  # a run's config.json has its own
  swept = {k: sorted({s[k] for s in summaries if k in s}) for k in per_run}
  fields = [f"{k} = {', '.join(f'{v:g}' for v in swept[k])}" if k in per_run and swept[k]
            else f"{k} = {config[k]}" for k in REPORT_FIELDS
            if (k in per_run and swept[k]) or (
                k not in per_run and k in config and config[k] not in (None, "", [], ()))]
  if fields:
    lines.append("- Config: " + "; ".join(fields) + " (every field: each run's `config.json`).")
  executed = sorted({f"{s['execution']}" + (f", replicas by {s['replica_execution']}"
                                              if s.get("replica_execution") else "")
                      for s in summaries if s.get("execution")})
  if executed:  # what execution="auto" and replica_execution="auto" resolved to
    lines.append("- Executed as: " + "; ".join(executed) + ".")
  for env in environments:
    e = json.loads(env)
    lines.append(f"- Device: {e['device']} ({e['backend']}, {e['devices']} device(s)), "
                 f"jax {e['jax']}, Python {e['python']}.")
  if walls:
    when = f", last run finished {finished[-1]}" if finished else ""
    lines.append(f"- Runtime: {sum(walls.values()):.0f} s of simulation over {len(walls)} "
                 f"simulations{when} (installing, loading data and drawing not counted).")
  return "\n".join(lines) + "\n"


FIGURES = (("test_error_vs_workers", "final test error against N"),
           ("test_error_vs_time", "test error against simulated time, one panel per N"),
           ("test_error_vs_epoch", "test error against epoch, one panel per N"),
           ("lag_vs_epoch", "lag against epoch and its histogram, per N"),
           ("gap_vs_epoch", "RMS gap against epoch, per N"))


def _tables(results_dir, summaries, is_grid, target_points, target_error) -> str:
  """The report's tables as Markdown: a grid sweep's accuracy over γ × η, or a main sweep's
  error, gap, time to the target and, where they occur, simulated times, diverged and
  failed seeds and cancelled jobs."""
  if is_grid:  # one row per (algorithm, N) would hide all but one cell of the grid
    return ("## Final test accuracy (%) over γ × η\n\n" + grid_table(summaries) +
            "\n\n## Final train accuracy (%) over γ × η\n\n" +
            grid_table(summaries, "final_train_error") + "\n")
  text = ("## Final test error (%)\n\n" + error_table(summaries) +
          "\n\n## Final train error (%)\n\n" + error_table(summaries, "final_train_error") +
          "\n\n## Mean raw gap RMS(Δ) over epochs\n\n" +
          error_table(summaries, "mean_gap_rms", scale=1.0, formats=(".3g", ".2g"),
                      baseline=False) +
          "\n\n## Simulated time to the target error (docs/spec.md §7)\n\n" +
          time_to_target_table(results_dir, summaries, target_points, target_error) + "\n")
  if any(s["num_workers"] > 1 and all(e is not None for e in
                                       s.get("final_train_error_by_worker") or [None])
         for s in summaries):
    text += ("\n## Train error on each worker's own data (docs/spec.md §8.4)\n\n" +
             worker_error_table(summaries) + "\n")
  if any(s.get("cost") and all(s["cost"]) for s in summaries):
    text += ("\n## What the runs cost in worker-time (docs/spec.md §8.5)\n\n" +
             cost_table(summaries) +
             "\n\n## Worker-time to the target error (docs/spec.md §8.5)\n\n" +
             time_to_target_table(results_dir, summaries, target_points, target_error,
                                  time_key="time/worker") + "\n")
  if any("simulated_time" in s for s in summaries):
    text += ("\n## Total simulated time of the run\n\n" +
             error_table(summaries, "simulated_time", scale=1.0, formats=(".0f", ".0f"),
                         marks=False) +
             "\n")
  if any(any(s.get("diverged") or []) or any(s.get("failed") or []) for s in summaries):
    text += ("\n## Diverged and failed seeds\n\n" + outcome_table(summaries) + "\n")
  if any(sum(s.get("cancelled_jobs", [0])) for s in summaries):
    text += ("\n## Cancelled or discarded jobs per run\n\n" +
             error_table(summaries, "cancelled_jobs", scale=1.0, formats=(".0f", ".0f"),
                         baseline=False, marks=False) + "\n")
  return text


def _language_tables(lm) -> str:
  """A language model's tables: validation bits per byte and perplexity per byte."""
  return ("## Validation bits per byte (language model)\n\n"
          "The `test/` metrics of a text sweep are measured on the corpus's validation "
          "split; bits per byte = loss / ln 2 with byte tokens, perplexity = exp(loss) "
          "per byte.\n\n" +
          error_table(lm, "final_bits_per_byte", scale=1.0, formats=(".3f", ".3f")) +
          "\n\n## Validation perplexity per byte\n\n" +
          error_table(lm, "final_perplexity", scale=1.0, formats=(".3f", ".3f")) +
          "\n\n")


def _figure_links(is_grid, language) -> list[tuple[str, str]]:
  """(file name, what it shows) of the figures the report links, in its order."""
  figures = [(name, what) for name, what in FIGURES if not is_grid or name not in (
      "test_error_vs_workers", "test_error_vs_time")]
  if language:
    figures[:0] = [("bits_vs_workers", "validation bits per byte against N"),
                   ("bits_vs_time", "validation bits per byte against simulated time")]
  if is_grid:
    figures.insert(0, ("grid_heatmap", "test accuracy over η × γ"))
  return figures


def _draw_figures(results_dir, summaries, is_grid, lm) -> None:
  """Draws every figure of the report into ``results_dir`` (``lm``: a language model's
  summaries with bits per byte, or None)."""
  if is_grid:
    plot_grid_heatmap(summaries, results_dir / "grid_heatmap")
  else:
    plot_error_vs_workers(summaries, results_dir / "test_error_vs_workers")
    plot_error_vs_workers(summaries, results_dir / "train_error_vs_workers",
                          key="final_train_error")
    plot_error_vs_time(results_dir, results_dir / "test_error_vs_time")
  if lm is not None:
    plot_error_vs_workers(lm, results_dir / "bits_vs_workers", key="final_bits_per_byte",
                          scale=1.0, ylabel="validation bits per byte")
    plot_error_vs_time(results_dir, results_dir / "bits_vs_time", scale=1.0,
                       key="test/bits_per_token", ylabel="validation bits per byte",
                       ymax=9.0)  # 8 bits: a uniform guess over 256 bytes
  plot_per_epoch(results_dir, "test/error", results_dir / "test_error_vs_epoch",
                 ylabel="test error (%)", scale=100)
  # Figure 4 of the GA paper compares GA and DANA-GA; fall back to every run.
  names = {s["algorithm"] for s in summaries}
  gap_family = ("ga", "dana_ga") if {"ga", "dana_ga"} <= names else None
  plot_lag(results_dir, results_dir / "lag_vs_epoch", algorithms=gap_family)
  plot_per_epoch(results_dir, "gap/rms", results_dir / "gap_vs_epoch", ylabel="RMS gap Δ",
                 baseline=False,
                 algorithms=gap_family, log=True)


def main(results_dir, target_points: float = 1.0, target_error: float | None = None,
         quiet: bool = False):
  """Writes ``RESULTS_DIR/results.md`` (what was run, the figures, the tables) and every
  figure; the time-to-target table's target as :func:`time_to_target`. Prints the report
  and where it is (``quiet``: only where)."""
  results_dir = pathlib.Path(results_dir)
  summaries = load_summaries(results_dir)
  if not summaries:
    raise SystemExit(f"error: {str(results_dir)!r} holds no finished runs (*/summary.json): "
                     "give the --workdir of a finished sweep.")
  # A grid sweep has several (η, γ) cells per (algorithm, N); a main sweep one (its η
  # and γ may still differ between algorithms: options_by_algorithm).
  is_grid = len({(s["algorithm"], s["num_workers"]) for s in summaries}) < len(summaries)
  header = report_header(results_dir, summaries)
  text = _tables(results_dir, summaries, is_grid, target_points, target_error)
  runs = run_dirs(results_dir)
  language = not is_grid and any(
      any(v is not None for v in final_values(d, "test/bits_per_token")) for d in runs.values())
  lm = None
  if language:  # a language model: bits per byte and perplexity, from the metrics files
    lm = [{**s, **_language_finals(runs.get((s["algorithm"], s["num_workers"])), s)}
          for s in summaries]
    text = _language_tables(lm) + text
  figures = _figure_links(is_grid, language)
  text = (header + "\n" + "\n".join(f"![{what}]({name}.png)" for name, what in figures) +
          "\n\n" + text)
  (results_dir / "results.md").write_text(text)
  _draw_figures(results_dir, summaries, is_grid, lm)
  if not quiet:
    print(text)
  print(f"results: {results_dir / 'results.md'} (tables and figures; figures also as PNG and "
        f"PDF in {results_dir})")


def _language_finals(run_dir, summary) -> dict:
  """A language-model run's final validation bits per byte and perplexity (2^bits), per
  seed; NaN for a seed that diverged (as its error) or was never evaluated finitely."""
  import math
  if run_dir is None:
    return {}
  seeds = list(summary.get("seeds") or [])
  diverged = dict(zip(seeds, summary.get("diverged") or [], strict=False))
  # final_values lists the seeds in sorted order; the summary's lists are in config order.
  by_seed = dict(zip(sorted(seeds), final_values(run_dir, "test/bits_per_token"),
                     strict=False))
  bits = [math.nan if by_seed.get(s) is None or diverged.get(s) else by_seed[s]
          for s in seeds]
  return {"final_bits_per_byte": bits, "final_perplexity": [2.0 ** b for b in bits]}


def _percent(low, high):
  """An argparse type: a number in [low, high], with a message naming the range."""
  import argparse

  def parse(text):
    try:
      value = float(text)
    except ValueError:
      value = None
    if value is None or not low <= value <= high:
      raise argparse.ArgumentTypeError(f"{text!r} is not a number of percent in "
                                       f"[{low:g}, {high:g}]")
    return value
  return parse


def _require_results(name: str, path: str) -> None:
  """A directory of finished runs, or one ``error:`` line (exit status 1) saying what it is."""
  field = f"{name}={path!r}"
  if not path.strip():
    sys.exit(f"error: {field} is not allowed: give the --workdir of a finished sweep.")
  try:
    if "\0" in path:
      raise ValueError(path)
    path.encode("utf-8")
    where = pathlib.Path(path)
    is_dir, exists = where.is_dir(), where.exists()
  except (UnicodeEncodeError, ValueError):
    sys.exit(f"error: {name}={ascii(path)} is not allowed: not a path (valid UTF-8 text "
             "without NUL characters)")
  if not exists and where.is_symlink():
    sys.exit(f"error: {field} is a symbolic link loop or a link to nothing: give the "
             "--workdir of a finished sweep.")
  if exists and not is_dir:
    sys.exit(f"error: {field} is a file, not a directory: give the --workdir of a finished "
             "sweep.")
  if not load_summaries(path):
    sys.exit(f"error: {field} holds no finished runs (*/summary.json): give the --workdir "
             "of a finished sweep.")


def cli(argv=None):
  """``python -m experiments.plot RESULTS_DIR``: redraws a sweep's report from its files."""
  import argparse

  class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 1, as every experiment's command line
      sys.exit(f"error: {message} (python -m experiments.plot --help)")

  parser = Parser(
      prog="python -m experiments.plot",
      description="Regenerate a sweep's results.md (tables: final test and train error, "
      "gap, simulated time to the target error and speedup, total simulated time, "
      "cancelled jobs, diverged and failed seeds) and every figure (PNG and PDF: error "
      "against N, against epoch and against simulated time, lag and gap) from the run "
      "files alone: each run directory's config.json, metrics.jsonl and summary.json. "
      "Nothing is re-simulated.")
  parser.add_argument("results_dir", metavar="RESULTS_DIR", nargs="?",
                      help="the sweep's --workdir, holding one directory per run")
  parser.add_argument("--workdir", metavar="RESULTS_DIR", dest="workdir",
                      help="the same as RESULTS_DIR, as the experiments spell it")
  parser.add_argument("--beside", metavar="OTHER_DIR", action="append", default=[],
                      help="another sweep (e.g. the heterogeneous environment): also draw "
                      "RESULTS_DIR/test_error_vs_workers_beside.png, the final error against "
                      "N of both side by side on one scale (repeatable)")
  target = parser.add_mutually_exclusive_group()
  target.add_argument("--target-points", metavar="P", type=_percent(0, 100), default=1.0,
                      help="the time-to-target table's target: the single-worker baseline's "
                      "final test error plus P percentage points (docs/spec.md §7; default 1)")
  target.add_argument("--target-error", metavar="E", type=_percent(0, 100), default=None,
                      help="the target as a test error in percent instead (e.g. 15), also "
                      "for a sweep without a single-worker baseline")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  if (args.results_dir is None) == (args.workdir is None):
    parser.error("give the sweep's directory once: RESULTS_DIR or --workdir=RESULTS_DIR")
  if args.workdir is not None:
    args.results_dir = args.workdir
  for name, path in [("RESULTS_DIR", args.results_dir)] + [("--beside", b) for b in args.beside]:
    _require_results(name, path)
  try:
    main(args.results_dir, target_points=args.target_points,
         target_error=None if args.target_error is None else args.target_error / 100)
    if args.beside:
      out = pathlib.Path(args.results_dir) / "test_error_vs_workers_beside"
      plot_environments([args.results_dir, *args.beside], out)
      print(f"wrote {out.with_suffix('.png')}")
  except OSError as e:  # the user's file system (read-only, full); anything else is a bug
    import errno
    if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                       getattr(errno, "EDQUOT", errno.ENOSPC)):
      raise
    sys.exit(f"error: RESULTS_DIR={args.results_dir!r}: cannot write "
             f"{str(e.filename or args.results_dir)!r} ({e.strerror}); the report is drawn "
             "into RESULTS_DIR, which must be writable and have room")


__all__ = [  # the report's command, and the pieces it is made of, by one name
    "FIGURES", "MEAN_BATCH_TIME", "cli", "colour", "environment_label", "error_against_time",
    "error_table", "evaluations", "failed_mark", "final_values", "grid_accuracy", "grid_table",
    "lag_distribution", "load_metrics", "load_summaries", "main", "ordered", "outcome_table",
    "per_epoch", "plot_environments", "plot_error_vs_time", "plot_error_vs_workers",
    "plot_gamma_densities", "plot_grid_heatmap", "plot_lag", "plot_per_epoch", "plot_speedup",
    "report_header", "run_dirs", "time_to_target", "time_to_target_table"]


if __name__ == "__main__":
  cli()
