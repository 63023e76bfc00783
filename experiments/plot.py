"""Tables and figures drawn from result files only.

    python -m experiments.plot RESULTS_DIR
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np


def load_summaries(results_dir) -> list[dict]:
  return [json.loads(p.read_text())
          for p in sorted(pathlib.Path(results_dir).glob("*/summary.json"))]


def error_table(summaries: list[dict], key: str = "final_test_error", scale: float = 100.0,
                digits: int = 2) -> str:
  """Markdown table: mean ± std of ``key`` (times ``scale``) per algorithm and N."""
  workers = sorted({s["num_workers"] for s in summaries if s["num_workers"] > 1})
  algorithms = sorted({s["algorithm"] for s in summaries if s["num_workers"] > 1})
  cell = {(s["algorithm"], s["num_workers"]): s for s in summaries}
  lines = ["| algorithm | " + " | ".join(f"N = {n}" for n in workers) + " |",
           "|---|" + "---|" * len(workers)]
  for a in algorithms:
    row = []
    for n in workers:
      s = cell.get((a, n))
      if s is None:
        row.append("—")
        continue
      e = scale * np.asarray(s[key])
      mark = " (diverged)" if any(s.get("diverged", [])) else ""
      row.append(f"{e.mean():.{digits}g} ± {e.std():.2g}{mark}" if scale != 100 else
                 f"{e.mean():.2f} ± {e.std():.2f}{mark}")
    lines.append(f"| {a} | " + " | ".join(row) + " |")
  for s in summaries:
    if s["num_workers"] == 1 and scale == 100:
      e = 100 * np.asarray(s[key])
      lines.append(f"\nSingle-worker {s['algorithm']}: {e.mean():.2f} ± {e.std():.2f}")
  return "\n".join(lines)


def plot_error_vs_workers(summaries, out_path, key="final_test_error"):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

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
  fig.tight_layout()
  out_path = pathlib.Path(out_path)
  fig.savefig(out_path.with_suffix(".png"), dpi=120)
  fig.savefig(out_path.with_suffix(".pdf"))
  plt.close(fig)


def main(results_dir):
  results_dir = pathlib.Path(results_dir)
  summaries = load_summaries(results_dir)
  if not summaries:
    raise SystemExit(f"no */summary.json under {results_dir}")
  text = ("## Final test error (%)\n\n" + error_table(summaries) +
          "\n\n## Final train error (%)\n\n" + error_table(summaries, "final_train_error") +
          "\n\n## Mean raw gap RMS(Δ) over epochs\n\n" +
          error_table(summaries, "mean_gap_rms", scale=1.0, digits=3) + "\n")
  (results_dir / "results.md").write_text(text)
  plot_error_vs_workers(summaries, results_dir / "test_error_vs_workers")
  print(text)
  print(f"wrote {results_dir / 'results.md'} and {results_dir / 'test_error_vs_workers.png'}")


if __name__ == "__main__":
  if len(sys.argv) != 2:
    raise SystemExit("usage: python -m experiments.plot RESULTS_DIR")
  main(sys.argv[1])
