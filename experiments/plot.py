"""Tables and figures drawn from result files only.

    python -m experiments.plot RESULTS_DIR
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

MEAN_BATCH_TIME = 128.0  # dana_jax.timing.MEAN_BATCH_TIME (not imported: no jax here)


def load_summaries(results_dir) -> list[dict]:
  return [json.loads(p.read_text())
          for p in sorted(pathlib.Path(results_dir).glob("*/summary.json"))]


def _table(algorithms, workers, text) -> list[str]:
  """Markdown rows: one per algorithm, one column per N, cells ``text(algorithm, N)``."""
  lines = ["| algorithm | " + " | ".join(f"N = {n}" for n in workers) + " |",
           "|---|" + "---|" * len(workers)]
  return lines + [f"| {a} | " + " | ".join(text(a, n) for n in workers) + " |"
                  for a in algorithms]


def error_table(summaries: list[dict], key: str = "final_test_error", *, scale: float = 100.0,
                formats: tuple[str, str] = (".2f", ".2f"), baseline: bool = True) -> str:
  """Markdown table: mean ± std of ``key`` (times ``scale``) per algorithm and N.

  ``formats`` are the format specs of the mean and the std; ``baseline`` adds
  the single-worker runs below the table.
  """
  workers = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  algorithms = sorted({s["algorithm"] for s in summaries if s["num_workers"] > 1})
  cell = {(s["algorithm"], s["num_workers"]): s for s in summaries}
  mean_format, std_format = formats

  def text(a, n):
    s = cell.get((a, n))
    if s is None:
      return "—"
    e = scale * np.asarray(s[key])
    mark = " (diverged)" if any(s.get("diverged", [])) else ""
    return f"{e.mean():{mean_format}} ± {e.std():{std_format}}{mark}"

  lines = _table(algorithms, workers, text)
  if baseline:
    for s in summaries:
      if s["num_workers"] == 1:
        e = scale * np.asarray(s[key])
        lines.append(f"\nSingle-worker {s['algorithm']}: {e.mean():{mean_format}} ± "
                     f"{e.std():{std_format}}")
  return "\n".join(lines)


def grid_accuracy(summaries: list[dict], key: str = "final_test_error"):
  """(learning rates, momenta from high to low, accuracy % [momenta, learning rates])."""
  lrs = sorted({s["learning_rate"] for s in summaries})
  moms = sorted({s["momentum"] for s in summaries}, reverse=True)
  acc = np.full((len(moms), len(lrs)), np.nan)
  for s in summaries:
    acc[moms.index(s["momentum"]), lrs.index(s["learning_rate"])] = 100 * (
        1 - np.mean(s[key]))
  return lrs, moms, acc


def grid_table(summaries: list[dict], key: str = "final_test_error") -> str:
  """Markdown table of test accuracy (%) over momentum (rows) × learning rate (columns)."""
  lrs, moms, acc = grid_accuracy(summaries, key)
  lines = ["| γ \\ η | " + " | ".join(f"{v:g}" for v in lrs) + " |",
           "|---|" + "---|" * len(lrs)]
  for i, m in enumerate(moms):
    lines.append(f"| {m:g} | " + " | ".join("—" if np.isnan(a) else f"{a:.2f}"
                                            for a in acc[i]) + " |")
  return "\n".join(lines)


def plot_error_vs_workers(summaries, out_path, key="final_test_error"):
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for a in sorted({s["algorithm"] for s in summaries if s["num_workers"] > 1}):
    pts = sorted((s["num_workers"], 100 * np.asarray(s[key])) for s in summaries
                 if s["algorithm"] == a and s["num_workers"] > 1)
    n = np.array([p[0] for p in pts])
    mean = np.array([p[1].mean() for p in pts])
    std = np.array([p[1].std() for p in pts])
    ax.plot(n, mean, marker="o", label=a)
    ax.fill_between(n, mean - std, mean + std, alpha=0.2)
  for s in summaries:
    if s["num_workers"] == 1:
      ax.axhline(100 * np.mean(s[key]), color="k", ls="--", label=f"{s['algorithm']} (N = 1)")
  ax.set_xlabel("number of workers N")
  ax.set_ylabel(key.replace("_", " ") + " (%)")
  ax.set_xscale("log", base=2)
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3)
  _save(fig, out_path)


def load_metrics(run_dir) -> list[dict]:
  """The rows of one run's ``metrics.jsonl``."""
  path = pathlib.Path(run_dir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def time_to_target(results_dir, summaries, target_points: float = 1.0):
  """Per (algorithm, N): the simulated time at which test error first reaches the target.

  SPEC §7: the target is the single-worker baseline's mean final test error
  plus ``target_points`` percentage points. A seed's time is the simulated
  time of its first evaluation at or below the target (evaluations come at
  chunk ends, so this is resolved to a chunk, an epoch by default). Returns
  ``(target, {(algorithm, N): [time or None per seed]})``; None: not reached.
  """
  base = [s for s in summaries if s["num_workers"] == 1]
  if not base:
    return None, {}
  target = float(np.mean(base[0]["final_test_error"])) + target_points / 100
  out = {}
  for run_dir in sorted(p.parent for p in pathlib.Path(results_dir).glob("*/metrics.jsonl")):
    config = json.loads((run_dir / "config.json").read_text())
    per_seed = {}
    for row in load_metrics(run_dir):
      err = row.get("test/error")
      if err is None or not np.isfinite(err) or "time/simulated" not in row:
        continue
      per_seed.setdefault(row["seed"], None)
      if err <= target and per_seed[row["seed"]] is None:
        per_seed[row["seed"]] = (row["step"] * MEAN_BATCH_TIME if config["num_workers"] == 1
                                 else row["time/simulated"])
    out[(config["algorithm"], config["num_workers"])] = [per_seed[k] for k in sorted(per_seed)]
  return target, out


def time_to_target_table(results_dir, summaries, target_points: float = 1.0) -> str:
  """Markdown: mean simulated time to the target (SPEC §7) and the speedup over N = 1."""
  target, times = time_to_target(results_dir, summaries, target_points)
  if target is None:
    return "(no single-worker baseline: no target)"
  base_alg = next(s["algorithm"] for s in summaries if s["num_workers"] == 1)
  base = times.get((base_alg, 1), [])
  base_time = np.mean(base) if base and all(t is not None for t in base) else None
  workers = sorted({n for (_, n) in times if n > 1})
  algorithms = sorted({a for (a, n) in times if n > 1})
  base_text = "—" if base_time is None else f"{base_time:.0f}"
  lines = [f"Target: test error ≤ {100 * target:.2f}% (single-worker {base_alg}'s final "
           f"error + {target_points:g} points); simulated time units (one worker's mean "
           "batch time is 128), mean over seeds; in brackets the speedup over one worker of "
           f"average speed ({base_text}: the baseline's steps to the target × 128). "
           "\"not reached\": some seed never reached it.\n"]

  def text(a, n):
    t = times.get((a, n))
    if t is None:
      return "—"
    if any(x is None for x in t):
      return f"not reached ({sum(x is not None for x in t)}/{len(t)} seeds)"
    speedup = f" ({base_time / np.mean(t):.1f}×)" if base_time else ""
    return f"{np.mean(t):.0f}{speedup}"

  return "\n".join(lines + _table(algorithms, workers, text))


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, out_path):
  out_path = pathlib.Path(out_path)
  fig.tight_layout()
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"))
  _pyplot().close(fig)


def plot_per_epoch(results_dir, key, out_path, num_workers=None, ylabel=None, scale=1.0,
                   algorithms=None, log=False):
  """``key`` (e.g. ``test/error``, ``lag/mean``, ``gap/rms``) vs epoch, mean ± std over seeds.

  One line per run directory; ``num_workers`` keeps the runs of that N (and
  N = 1), ``algorithms`` those algorithms; diverged (non-finite) points are
  left out.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for run_dir in sorted(p.parent for p in pathlib.Path(results_dir).glob("*/metrics.jsonl")):
    config = json.loads((run_dir / "config.json").read_text())
    n = config["num_workers"]
    if num_workers is not None and n not in (1, num_workers):
      continue
    if algorithms is not None and config["algorithm"] not in algorithms:
      continue
    rows = [r for r in load_metrics(run_dir) if key in r and np.isfinite(r[key])]
    if not rows:
      continue
    epochs = sorted({r["epoch"] for r in rows})
    values = [np.array([scale * r[key] for r in rows if r["epoch"] == e]) for e in epochs]
    mean = np.array([v.mean() for v in values])
    std = np.array([v.std() for v in values])
    style = "--" if n == 1 else "-"
    line, = ax.plot(epochs, mean, style, label=f"{config['algorithm']} (N = {n})")
    ax.fill_between(epochs, mean - std, mean + std, alpha=0.2, color=line.get_color())
  ax.set_xlabel("epoch")
  ax.set_ylabel(ylabel or key)
  if log:
    ax.set_yscale("log")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  _save(fig, out_path)


def plot_gamma_densities(path_json, out_path):
  """The timing models' densities with P(X > 1.25·mean) shaded (GA paper, Figure 3)."""
  plt = _pyplot()
  spec = json.loads(pathlib.Path(path_json).read_text())
  fig, ax = plt.subplots(figsize=(6, 4))
  for model in spec["models"]:
    x, y = np.asarray(model["x"]), np.asarray(model["density"])
    line, = ax.plot(x, y, label=f"{model['name']} (shape {model['shape']:g}): "
                    f"P(X > 1.25·mean) = {model['tail']:.3f}")
    tail = x > 1.25 * model["mean"]
    ax.fill_between(x[tail], y[tail], alpha=0.3, color=line.get_color())
  ax.set_xlabel("batch time")
  ax.set_ylabel("density")
  ax.legend(fontsize=7)
  _save(fig, out_path)


def plot_speedup(path_json, out_path):
  """Theoretical speedup of ASGD and SSGD vs N (GA paper, Figure 12)."""
  plt = _pyplot()
  spec = json.loads(pathlib.Path(path_json).read_text())
  fig, ax = plt.subplots(figsize=(5, 4))
  n = np.asarray(spec["num_workers"])
  for name in ("asgd", "ssgd"):
    ax.errorbar(n, spec[name], yerr=spec[name + "_std"], marker="o", label=name.upper())
  ax.plot(n, n, "k:", label="linear")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log", base=2)
  ax.set_xlabel("number of workers N")
  ax.set_ylabel("speedup over one worker")
  ax.legend()
  ax.grid(alpha=0.3)
  _save(fig, out_path)


def plot_grid_heatmap(summaries, out_path, key="final_test_error"):
  """Test accuracy over η × γ with the values written in the cells (GA paper, Fig. 9–11)."""
  plt = _pyplot()
  lrs, moms, acc = grid_accuracy(summaries, key)
  fig, ax = plt.subplots(figsize=(1 + 0.9 * len(lrs), 1 + 0.5 * len(moms)))
  image = ax.imshow(acc, cmap="viridis", aspect="auto")
  for i in range(len(moms)):
    for j in range(len(lrs)):
      if np.isfinite(acc[i, j]):
        ax.text(j, i, f"{acc[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
  ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
  ax.set_yticks(range(len(moms)), [f"{v:g}" for v in moms])
  ax.set_xlabel("learning rate η")
  ax.set_ylabel("momentum γ")
  fig.colorbar(image, label="test accuracy (%)")
  _save(fig, out_path)


def main(results_dir):
  results_dir = pathlib.Path(results_dir)
  summaries = load_summaries(results_dir)
  if not summaries:
    raise SystemExit(f"no */summary.json under {results_dir}")
  # A grid sweep has several (η, γ) cells per (algorithm, N); a main sweep one (its η
  # and γ may still differ between algorithms: options_by_algorithm).
  is_grid = len({(s["algorithm"], s["num_workers"]) for s in summaries}) < len(summaries)
  if is_grid:  # one row per (algorithm, N) would hide all but one cell of the grid
    text = ("## Final test accuracy (%) over γ × η\n\n" + grid_table(summaries) +
            "\n\n## Final train accuracy (%) over γ × η\n\n" +
            grid_table(summaries, "final_train_error") + "\n")
  else:
    text = ("## Final test error (%)\n\n" + error_table(summaries) +
            "\n\n## Final train error (%)\n\n" + error_table(summaries, "final_train_error") +
            "\n\n## Mean raw gap RMS(Δ) over epochs\n\n" +
            error_table(summaries, "mean_gap_rms", scale=1.0, formats=(".3g", ".2g"),
                        baseline=False) +
            "\n\n## Simulated time to the target error (SPEC §7)\n\n" +
            time_to_target_table(results_dir, summaries) + "\n")
    if any("simulated_time" in s for s in summaries):
      text += ("\n## Total simulated time of the run\n\n" +
               error_table(summaries, "simulated_time", scale=1.0, formats=(".0f", ".0f")) +
               "\n")
    if any(sum(s.get("cancelled_jobs", [0])) for s in summaries):
      text += ("\n## Cancelled or discarded jobs per run\n\n" +
               error_table(summaries, "cancelled_jobs", scale=1.0, formats=(".0f", ".0f"),
                           baseline=False) + "\n")
  (results_dir / "results.md").write_text(text)
  if is_grid:
    plot_grid_heatmap(summaries, results_dir / "grid_heatmap")
  else:
    plot_error_vs_workers(summaries, results_dir / "test_error_vs_workers")
    plot_error_vs_workers(summaries, results_dir / "train_error_vs_workers",
                          key="final_train_error")
  plot_per_epoch(results_dir, "test/error", results_dir / "test_error_vs_epoch",
                 ylabel="test error (%)", scale=100,
                 num_workers=max(s["num_workers"] for s in summaries))
  # Figure 4 of the GA paper compares GA and DANA-GA; fall back to every run.
  names = {s["algorithm"] for s in summaries}
  gap_family = ("ga", "dana_ga") if {"ga", "dana_ga"} <= names else None
  plot_per_epoch(results_dir, "lag/mean", results_dir / "lag_vs_epoch", ylabel="mean lag τ",
                 algorithms=gap_family)
  plot_per_epoch(results_dir, "gap/rms", results_dir / "gap_vs_epoch", ylabel="RMS gap Δ",
                 algorithms=gap_family, log=True)
  print(text)
  print(f"wrote {results_dir / 'results.md'} and figures in {results_dir}")


if __name__ == "__main__":
  if len(sys.argv) != 2:
    raise SystemExit("usage: python -m experiments.plot RESULTS_DIR")
  main(sys.argv[1])
