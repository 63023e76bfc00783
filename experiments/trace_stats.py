"""How variable real cluster batch times are, against the GA paper's gamma environments
(docs/spec.md §8.3; docs/traces.md).

    python -m experiments.trace_stats [--cv-file PATH] [--out results/traces]

Reads the four shipped Alibaba PAI jobs (``dana_jax/traces/alibaba_pai``) and, given, the
100 jobs' across-worker coefficient of variation per iteration (``coefficient_variation.csv``
of the same public data, 1.7 MB, not shipped), and writes ``trace_stats.md`` and
``cv_summary.csv`` under ``--out``: for each source, the across-worker CV of one
iteration's batch times (what a round of N workers sees), the within-worker CV (one
worker's batch-to-batch variation) and the CV of the workers' mean times (persistent
speeds), beside the same three for the gamma models.
"""

from __future__ import annotations

import argparse
import csv
import math
import pathlib
import sys

import numpy as np

from dana_jax.traces import ALIBABA_JOBS, alibaba_job


def cv(x, axis=None):
  x = np.asarray(x, np.float64)
  return np.std(x, axis=axis) / np.mean(x, axis=axis)


def job_rows():
  rows = []
  for job in ALIBABA_JOBS:
    records = alibaba_job(job)
    length = min(r.size for r in records)
    table = np.stack([r[:length] for r in records])  # [10, iterations sampled]
    across = cv(table, axis=0)
    rows.append({"source": f"Alibaba PAI {job}", "across_median": float(np.median(across)),
                 "across_q1": float(np.quantile(across, 0.25)),
                 "across_q3": float(np.quantile(across, 0.75)),
                 "within_worker": float(np.mean([cv(r) for r in records])),
                 "between_worker_means": float(cv([r.mean() for r in records]))})
  return rows


def gamma_rows():
  # Gamma(k): CV 1/√k per batch; persistent speeds Gamma(s): CV 1/√s between workers;
  # their product's CV is √((1 + 1/k)(1 + 1/s) − 1).
  out = []
  for label, k, s in (("GA homogeneous, Gamma(100)", 100.0, None),
                      ("heterogeneous, Gamma(4)", 4.0, None),
                      ("heterogeneous + persistent speeds (shape 2)", 4.0, 2.0)):
    within = 1 / math.sqrt(k)
    between = 0.0 if s is None else 1 / math.sqrt(s)
    across = math.sqrt((1 + within ** 2) * (1 + between ** 2) - 1)
    out.append({"source": label, "across_median": across, "across_q1": None,
                "across_q3": None, "within_worker": within, "between_worker_means": between})
  return out


def cv_file_rows(path):
  with open(path, newline="") as f:
    reader = csv.reader(f)
    next(reader)
    jobs = [np.asarray([float(v) for v in row[1:] if v != ""]) for row in reader]
  values = np.concatenate(jobs)
  medians = np.asarray([np.median(j) for j in jobs])
  summary = {"jobs": len(jobs), "values": int(values.size),
             "median": float(np.median(values)), "q1": float(np.quantile(values, 0.25)),
             "q3": float(np.quantile(values, 0.75)), "p90": float(np.quantile(values, 0.9)),
             "share_above_0.1": float(np.mean(values > 0.1)),
             "share_above_0.5": float(np.mean(values > 0.5)),
             "job_median_min": float(medians.min()), "job_median_max": float(medians.max()),
             "jobs_median_above_0.1": int(np.sum(medians > 0.1))}
  return summary, medians


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cv-file", default=None)
  parser.add_argument("--out", default="results/traces")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  rows = gamma_rows() + job_rows()
  fmt = lambda v: "—" if v is None else f"{v:.3f}"
  lines = ["# Batch-time variability: gamma environments and real cluster traces", "",
           f"Made by `python -m experiments.trace_stats {' '.join(argv)}`.", "",
           "| source | across-worker CV per iteration, median (IQR) | within-worker CV | "
           "CV of worker means |", "|---|---|---|---|"]
  for r in rows:
    iqr = "" if r["across_q1"] is None else f" ({fmt(r['across_q1'])}–{fmt(r['across_q3'])})"
    lines.append(f"| {r['source']} | {fmt(r['across_median'])}{iqr} | "
                 f"{fmt(r['within_worker'])} | {fmt(r['between_worker_means'])} |")
  with open(out / "cv_summary.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  if args.cv_file:
    summary, medians = cv_file_rows(args.cv_file)
    lines += ["", f"The {summary['jobs']} jobs of `coefficient_variation.csv` (10 workers "
              f"each; {summary['values']} iterations in all): across-worker CV median "
              f"{summary['median']:.3f} (quartiles {summary['q1']:.3f}–{summary['q3']:.3f}, "
              f"90th percentile {summary['p90']:.3f}); {100 * summary['share_above_0.1']:.1f}% "
              f"of iterations above 0.1 (the GA paper's homogeneous CV), "
              f"{100 * summary['share_above_0.5']:.1f}% above 0.5; per-job medians from "
              f"{summary['job_median_min']:.3f} to {summary['job_median_max']:.3f}, "
              f"{summary['jobs_median_above_0.1']} of {summary['jobs']} jobs above 0.1."]
    with open(out / "cv_100_jobs.csv", "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["job", "median_across_worker_cv"])
      writer.writerows([[i, f"{m:.6f}"] for i, m in enumerate(medians)])
  (out / "trace_stats.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
