"""Every result the README quotes is what the committed results files say.

The README's result sections (from "Main job results" to "Speedup model") quote
tables and numbers of the sweeps under ``results/``. This test recomputes each
from the committed run files with numpy — ``summary.json`` (final errors,
diverged and failed seeds, gaps, simulated times), ``metrics.jsonl`` (time to
the target, bits per byte), ``results/speedup/speedup.json`` — not through the
report code, and compares them at the README's precision: every cell of every
result table, and every number of the prose, which must be among those checked
(a number only the README knows fails the last test). Configuration values
(η, γ, shapes) and run times are not results and are listed apart.
"""

import json
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
MEAN_BATCH_TIME = 128.0  # one worker of average speed: the single-worker time axis


def _results_text() -> str:
  text = (ROOT / "README.md").read_text()
  return text[text.index("## Main job results"):text.index("## Executions and how steps")]


TEXT = _results_text()
FLAT = " ".join(TEXT.replace("**", "").split())  # prose with line breaks undone


class Sweep:
  """One committed sweep, read with json and numpy only."""

  def __init__(self, name):
    self.dir = RESULTS / name
    self.runs = {}
    for path in sorted(self.dir.glob("*/summary.json")):
      s = json.loads(path.read_text())
      self.runs[(s["algorithm"], s["num_workers"])] = s | {"dir": path.parent}
    assert self.runs, name

  def values(self, a, n, key="final_test_error", scale=100.0):
    return scale * np.asarray(self.runs[(a, n)][key], float)

  def mean(self, a, n, digits=2, key="final_test_error", scale=100.0):
    return f"{self.values(a, n, key, scale).mean():.{digits}f}"

  def seed(self, a, n, i, digits=2):
    return f"{self.values(a, n)[i]:.{digits}f}"

  def gap(self, a, n):  # two significant digits, as %.2g
    return f"{np.mean(self.runs[(a, n)]['mean_gap_rms']):.2g}"

  def time(self, a, n):
    return f"{np.mean(self.runs[(a, n)]['simulated_time']):,.0f}"

  def count(self, a, n, what):
    return sum(bool(x) for x in self.runs[(a, n)].get(what) or [])

  def rows(self, a, n):
    path = self.runs[(a, n)]["dir"] / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

  def target(self):
    """The single-worker run's mean final test error + 1 point (a fraction)."""
    (base,) = [s for (a, n), s in self.runs.items() if n == 1]
    return float(np.mean(base["final_test_error"])) + 0.01

  def first_times(self, a, n):
    """Per seed, the simulated time of the first evaluation at or below the target
    (a single worker's: its step × 128); None: never."""
    target, first, seeds = self.target(), {}, set()
    for row in self.rows(a, n):
      if "test/error" not in row or "time/simulated" not in row:
        continue
      seeds.add(row["seed"])
      err = row["test/error"]
      if err is not None and np.isfinite(err) and err <= target:
        t = row["step"] * MEAN_BATCH_TIME if n == 1 else row["time/simulated"]
        first[row["seed"]] = min(first.get(row["seed"], np.inf), t)
    return [first.get(s) for s in sorted(seeds)]

  def base_time(self):
    (key,) = [k for k in self.runs if k[1] == 1]
    times = self.first_times(*key)
    assert all(t is not None for t in times)
    return float(np.mean(times))

  def speedup(self, a, n):
    times = self.first_times(a, n)
    assert all(t is not None for t in times), (a, n, times)
    return f"{self.base_time() / np.mean(times):.1f}×"

  def time_cell(self, a, n):
    """The README's cell: "T (S×)", "not reached" or "not reached (k of K seeds reached
    it)"; the second of those accepted for any k."""
    times = self.first_times(a, n)
    reached = sum(t is not None for t in times)
    if reached < len(times):
      return {"not reached", f"not reached ({reached} of {len(times)} seeds reached it)"}
    return {f"{np.mean(times):.0f} ({self.speedup(a, n)})"}


@pytest.fixture(scope="module")
def sweeps():
  return {d.name: Sweep(d.name) for d in sorted(RESULTS.iterdir())
          if d.is_dir() and any(d.glob("*/summary.json"))}


def _bits(sweep, a, n):
  """Per seed, the last finite validation bits per byte (NaN for a diverged seed)."""
  last = {}
  for row in sweep.rows(a, n):
    v = row.get("test/bits_per_token")
    if v is not None and np.isfinite(v):
      last[row["seed"]] = (row["step"], v)
  s = sweep.runs[(a, n)]
  return [np.nan if d else last[k][1] for k, d in zip(s["seeds"], s["diverged"], strict=True)]


def _bits_against_time(sweep, a, n):
  """(simulated time, bits per byte) at each evaluation, each the mean over the seeds
  evaluated finitely there; a single worker's time is its step × 128."""
  by_step = {}
  for row in sweep.rows(a, n):
    v = row.get("test/bits_per_token")
    if v is None or not np.isfinite(v) or "time/simulated" not in row:
      continue
    t = row["step"] * MEAN_BATCH_TIME if n == 1 else row["time/simulated"]
    by_step.setdefault(row["step"], []).append((t, v))
  points = np.array([np.mean(by_step[k], axis=0) for k in sorted(by_step)])
  return points[:, 0], points[:, 1]


def _table_after(anchor, start=0):
  """The first Markdown table after ``anchor`` in the result sections: (header cells,
  rows of cells), bold marks removed."""
  at = TEXT.index(anchor, start)
  lines = TEXT[at:].splitlines()
  first = next(i for i, line in enumerate(lines) if line.startswith("|"))
  table = []
  for line in lines[first:]:
    if not line.startswith("|"):
      break
    table.append([c.strip().replace("**", "") for c in line.strip().strip("|").split("|")])
  header, _, *rows = table
  return header, rows


def _check_error_cell(text, s, values, where):
  """A cell "m ± s (marks)" or "m" or words ("diverged", "diverged (2 seeds), failed
  (1)"): the numbers at the cell's precision, the marks as the summary's seeds."""
  diverged = sum(bool(x) for x in s.get("diverged") or [])
  failed = sum(bool(x) for x in s.get("failed") or [])
  seeds = len(values)
  m = re.fullmatch(r"(\d+\.\d+)(?: ± (\d+\.\d+))?(.*)", text)
  if m is None:  # words only: every seed accounted for
    words = re.fullmatch(r"diverged(?: \((\d+) seeds?\), failed \((\d+)\))?", text)
    assert words, f"{where}: {text!r}"
    if words.group(1) is None:
      assert diverged == seeds, where
    else:
      assert (diverged, failed) == (int(words.group(1)), int(words.group(2))), where
    return
  digits = len(m.group(1).split(".")[1])
  assert m.group(1) == f"{np.mean(values):.{digits}f}", f"{where}: {text!r}"
  if m.group(2):
    std_digits = len(m.group(2).split(".")[1])
    assert m.group(2) == f"{np.std(values):.{std_digits}f}", f"{where}: {text!r}"
  marks = m.group(3).strip()
  seen_diverged, seen_failed = 0, 0
  for mark in re.findall(r"\(([^)]*)\)", marks):
    if mark == "diverged":
      seen_diverged = max(diverged, 1)
    elif (f := re.fullmatch(r"failed (\d+)/(\d+) from epoch (\d+)", mark)):
      first = min(e for e in s["failed_from_epoch"] if e is not None)
      assert (int(f.group(1)), int(f.group(2)), int(f.group(3))) == (
          failed, seeds, first), f"{where}: {text!r}"
      seen_failed = failed
    elif (f := re.fullmatch(r"(\d+) seeds? diverged", mark)):
      seen_diverged = int(f.group(1))
    elif (f := re.fullmatch(r"(\d+) failed", mark)):
      seen_failed = int(f.group(1))
    else:
      raise AssertionError(f"{where}: unknown mark {mark!r}")
  # An unmarked number is a mean over seeds that all stayed finite and learned.
  assert (seen_diverged, seen_failed) == (diverged, failed), f"{where}: {text!r}"


NAMES = {"GA": "ga", "DANA-GA": "dana_ga", "delay-adaptive": "delay_adaptive",
         "Ringmaster": "ringmaster", "m-sync": "msync", "Rennala": "rennala",
         "async local SGD": "async_local_sgd", "SSGD": "ssgd", "SA": "sa", "NAG-ASGD": "nag"}


def _name(header):
  """"Ringmaster (R = N)" → "ringmaster"; a registry name stays itself."""
  words = re.sub(r" \(.*\)$", "", header)
  return NAMES.get(words, words)


def _n(header):
  return int(re.fullmatch(r"(?:\w+ )?N = (\d+)", header).group(1))


# (anchor, sweep): tables of algorithm rows × "N = n" columns of final test error (%).
ERROR_TABLES = [("## Main job results", "fashion_mnist"),
                ("**The heterogeneous environment**", "fashion_mnist_heterogeneous")]


@pytest.mark.parametrize("anchor,name", ERROR_TABLES)
def test_error_tables_of_algorithms_by_n(sweeps, anchor, name):
  header, rows = _table_after(anchor)
  sweep = sweeps[name]
  assert header[0] == "algorithm" and len(rows) >= 5
  for row in rows:
    for column, cell in zip(header[1:], row[1:], strict=True):
      a, n = row[0], _n(column)
      _check_error_cell(cell, sweep.runs[(a, n)], sweep.values(a, n), f"{name} {a} N={n}")


def test_time_to_target_tables(sweeps):
  header, rows = _table_after("Simulated time to the target")
  sweep = sweeps["fashion_mnist"]
  for row in rows:
    for column, cell in zip(header[1:], row[1:], strict=True):
      assert cell in sweep.time_cell(row[0], _n(column)), (row[0], column, cell)
  header, rows = _table_after("Simulated time to the target (11.03 + 1 = 12.03%)")
  sweep = sweeps["fashion_mnist_modern_heterogeneous"]
  assert header[0] == "N" and len(rows) == 4
  for row in rows:
    for column, cell in zip(header[1:], row[1:], strict=True):
      assert cell in sweep.time_cell(_name(column), int(row[0])), (row[0], column, cell)


def test_the_methods_after_the_ga_paper_tables(sweeps):
  header, rows = _table_after("### The methods after the GA paper, on digits")
  assert header[:2] == ["environment", "N"] and len(rows) == 8
  environment = None
  for row in rows:
    environment = row[0] or environment
    sweep = sweeps[{"homogeneous": "digits_modern",
                    "persistent slow workers": "digits_modern_heterogeneous"}[environment]]
    for column, cell in zip(header[2:], row[2:], strict=True):
      a, n = _name(column), int(row[1])
      _check_error_cell(cell, sweep.runs[(a, n)], sweep.values(a, n), f"{environment} {a} {n}")
  header, rows = _table_after("### The methods after the GA paper, on Fashion-MNIST")
  sweep = sweeps["fashion_mnist_modern_heterogeneous"]
  assert header[0] == "N" and len(rows) == 4
  for row in rows:
    for column, cell in zip(header[1:], row[1:], strict=True):
      a, n = _name(column), int(row[0])
      _check_error_cell(cell, sweep.runs[(a, n)], sweep.values(a, n), f"fashion {a} {n}")


def test_the_adaptive_bases_table(sweeps):
  header, rows = _table_after("### Gap-Aware and Staleness-Aware over Adam")
  assert header[0] == "base" and len(rows) == 4
  for row in rows:
    base = row[0]
    if base == "(SGD, main job)":
      sweep, single = sweeps["fashion_mnist"], ("sgd", 1)
    else:
      sweep, single = sweeps[f"fashion_mnist_bases_{base.lower()}"], ("sa", 1)
    for column, cell in zip(header[1:], row[1:], strict=True):
      a, n = (single if column == "N = 1" else (_name(column.split(" N = ")[0]), _n(column)))
      _check_error_cell(cell, sweep.runs[(a, n)], sweep.values(a, n), f"{base} {column}")


def test_the_language_model_table(sweeps):
  header, rows = _table_after("### Language modelling")
  assert header[0] == "algorithm" and len(rows) == 7
  for row in rows:
    over_adamw = " over AdamW" in row[0]
    sweep = sweeps["wikitext103_offline_adamw" if over_adamw else "wikitext103_offline"]
    a = _name(row[0].replace(" over AdamW", ""))
    for column, cell in zip(header[1:], row[1:], strict=True):
      n = _n(column)
      _check_error_cell(cell, sweep.runs[(a, n)], np.asarray(_bits(sweep, a, n)),
                        f"text {row[0]} N={n}")


def test_the_speedup_table():
  spec = json.loads((RESULTS / "speedup" / "speedup.json").read_text())
  header, rows = _table_after("### Speedup model")
  assert header == ["N", "ASGD", "SSGD"]
  assert [int(r[0]) for r in rows] == spec["num_workers"]
  for i, row in enumerate(rows):
    for cell, name in zip(row[1:], ("asgd", "ssgd"), strict=True):
      assert cell == f"{spec[name][i]:.2f} ± {spec[name + '_std'][i]:.2f}", (row, name)


def claims(sweeps):
  """The numbers of the prose, each with a few words of its context, as the results
  files give them."""
  fm, het = sweeps["fashion_mnist"], sweeps["fashion_mnist_heterogeneous"]
  g0 = sweeps["fashion_mnist_ga_no_momentum"]
  dg, dm, dmh = sweeps["digits"], sweeps["digits_modern"], sweeps["digits_modern_heterogeneous"]
  mh = sweeps["fashion_mnist_modern_heterogeneous"]
  target = f"{100 * fm.target():.2f}"
  ns = (4, 8, 16, 32)
  yield f"Single-worker sgd: {fm.mean('sgd', 1)} ± {np.std(fm.values('sgd', 1)):.2f}"
  # A diverged seed's error: non-finite parameters predict one class (class 0).
  fully = [s for s in fm.runs.values() if all(s["diverged"])]
  assert fully and {e for s in fully for e in s["final_test_error"]} == {0.9}
  yield "90% on Fashion-MNIST's balanced test set"
  digits_diverged = {e for s in dg.runs.values() if any(s["diverged"])
                     for e, d in zip(s["final_test_error"], s["diverged"], strict=True) if d}
  assert digits_diverged == {0.93}
  yield "93.00% on digits' test set"
  yield f"single-worker SGD's {fm.mean('sgd', 1)}% + 1 point = {target}%"
  yield f"(the baseline reaches it after {fm.base_time():,.0f} time units)"
  yield (f"(DANA-GA's seed 2 ends at {fm.seed('dana_ga', 16, 2)}%, "
         f"{fm.values('dana_ga', 16)[2] - 100 * fm.target():.2f} points above)")
  sa_diverged = [fm.count("sa", n, "diverged") for n in ns]
  assert sa_diverged == [2, 2, 3, 3]
  yield ("SA diverges in 2 of 3 seeds at N = 4 and 8 and in all seeds at N = 16 and 32")
  ga = ", ".join(fm.mean("ga", n) for n in ns)
  assert fm.count("ga", 32, "failed") == 1 and fm.runs[("ga", 32)]["failed_from_epoch"][
      [bool(f) for f in fm.runs[("ga", 32)]["failed"]].index(True)] == 4
  others = [fm.seed("ga", 32, i, 1) for i in range(3) if not fm.runs[("ga", 32)]["failed"][i]]
  yield (f"GA trains at every N ({ga}%; at N = 32 one seed stays finite but is at chance "
         f"from epoch 4, *failed*, the other two end at {others[0]} and {others[1]}%)")
  yield f"DANA-GA stays closest to the single-worker baseline ({fm.mean('sgd', 1)}%)"
  yield "holds at every N: " + ", ".join(fm.mean("dana_ga", n) for n in ns) + "%"
  assert all(fm.count("nag", n, "diverged") == 3 for n in ns)
  yield "it diverges in every seed at every N"
  yield (f"GA with γ = 0.9 beats γ = 0 only at N = 4 ({fm.mean('ga', 4)} vs "
         f"{g0.mean('ga', 4)}%); at N = 8, 16, 32 γ = 0 is better ("
         + ", ".join(g0.mean("ga", n) for n in ns[1:]) + "% vs "
         + ", ".join(fm.mean("ga", n) for n in ns[1:]) + "%")
  assert float(fm.mean("ga", 4)) < float(g0.mean("ga", 4))
  assert all(float(g0.mean("ga", n)) < float(fm.mean("ga", n)) for n in ns[1:])
  matched = sweeps["fashion_mnist_ga_no_momentum_matched"]
  assert all(all(s["diverged"]) for s in matched.runs.values())
  steps = [t for s in matched.runs.values() for t in s["diverged_at_step"]]
  late = [n for (_, n), s in matched.runs.items() for t in s["diverged_at_step"] if t != 468]
  assert set(steps) == {468, 936} and set(late) == {4}
  yield (f"every γ = 0 seed diverges at every N within two epochs ({steps.count(468)} of "
         f"{len(steps)} at the first chunk's end, step 468, in the warm-up as η rises to 1.0; "
         f"{len(late)} seeds at N = 4 at step 936)")
  yield ("mean RMS(Δ) " + ", ".join(
      f"{fm.gap('dana_ga', n)} vs {fm.gap('ga', n)}" + (" (N = 4)" if n == 4 else f" ({n})")
      for n in ns))
  yield f"DANA-SA is second at every N ({fm.mean('dana_sa', 4)} … {fm.mean('dana_sa', 32)}%)"
  sa4, sa8 = fm.runs[("sa", 4)], fm.runs[("sa", 8)]
  assert sa4["diverged"] == [True, False, True] and sa8["diverged"] == [True, True, False]
  assert {sa4["diverged_at_step"][0], sa4["diverged_at_step"][2], sa8["diverged_at_step"][0],
          sa8["diverged_at_step"][1]} == {936}
  yield (f"seed 1 survives at N = 4 ({fm.seed('sa', 4, 1)}%) and at N = 8 seed 2 "
         f"({fm.seed('sa', 8, 2)}%); the other two diverge at step 936 in both")
  # The heterogeneous environment.
  yield f"single-worker SGD {het.mean('sgd', 1)} on that machine"
  yield f"(GA at N = 32: {het.mean('ga', 32)}% against {fm.mean('ga', 32)}%)"
  assert not any(het.count("sa", n, "diverged") for n in (4, 8, 32))
  nag4 = het.runs[("nag", 4)]
  k = nag4["failed"].index(True)
  train = [r["train/error"] for r in het.rows("nag", 4) if r["seed"] == nag4["seeds"][k]
           and r.get("train/error") is not None]
  yield (f"(train error {100 * train[0]:.0f}% after epoch 1, then "
         f"{100 * min(train[1:]):.2f}–{100 * max(train[1:]):.2f}% to the end)")
  yield (f"DANA-GA reaches the target ({100 * het.target():.2f}%) at every N, "
         f"{het.speedup('dana_ga', 4)[:-1]}× to {het.speedup('dana_ga', 32)[:-1]}× faster")
  yield f"GA at N = 4 and 8 ({het.speedup('ga', 4)}, {het.speedup('ga', 8)})"
  # digits.
  yield f"GA beats SA ({dg.mean('ga', 32)} vs {dg.mean('sa', 32)}% at N = 32)"
  for n in (16, 32):  # DANA-GA best at N = 16 and 32
    assert min(dg.runs, key=lambda k: dg.values(*k).mean() if k[1] == n else np.inf) == (
        "dana_ga", n)
  assert min(dg.runs, key=lambda k: dg.values(*k).mean() if k[1] == 4 else np.inf) == (
      "dana", 4)
  assert all(dg.count("dana", n, "failed") == 3 for n in (16, 32))
  assert all(dg.count(a, n, "failed") for a in ("nag", "asgd") for n in (4, 16, 32))
  firsts = [min(e for e in dg.runs[(a, n)]["failed_from_epoch"] if e is not None)
            for a in ("nag", "asgd") for n in (4, 16, 32)]  # a run's first failed seed
  yield f"*failed*: in each run the first at chance from epoch {min(firsts):.0f}–{max(firsts):.0f}"
  assert dg.count("dc_asgd", 4, "failed") and not dg.count("dc_asgd", 4, "diverged")
  assert all(dg.count("dc_asgd", n, "diverged") for n in (16, 32))
  yield "DC-ASGD fails at N = 4 and diverges at N = 16 and 32"
  # The methods after the GA paper, on digits.
  yield f"(single-worker SGD: {dm.mean('sgd', 1)})"
  yield f"({dm.mean('delay_adaptive', 8)} against {dm.mean('dana_ga', 8)}, within one seed's"
  yield (f"(m-sync {dm.mean('msync', 16)}, SSGD {dm.mean('ssgd', 16)}, Rennala "
         f"{dm.mean('rennala', 16)} against GA's {dm.mean('ga', 16)} ± "
         f"{np.std(dm.values('ga', 16)):.2f}; DANA-GA's {dm.mean('dana_ga', 16)} beats them all)")
  yield (f"({dm.mean('msync', 16)} vs {dm.mean('ssgd', 16)} at N = 16, {dm.mean('msync', 32)} "
         f"vs {dm.mean('ssgd', 32)} at N = 32)")
  yield (f"SSGD needs {dmh.time('ssgd', 32)} time units for 20 epochs at N = 32, m-sync "
         f"{dmh.time('msync', 32)}, Rennala {dmh.time('rennala', 32)}, the asynchronous methods "
         f"{dmh.time('ga', 32)}")
  yield f"(single-worker error + 1 point = {100 * dm.target():.2f}%"
  reached = sorted(k for k in dm.runs if k[1] > 1 and all(
      t is not None for t in dm.first_times(*k)))
  assert reached == [("dana_ga", 4), ("ga", 4), ("rennala", 4)]
  yield (f"only DANA-GA ({dm.speedup('dana_ga', 4)} over one average worker), GA "
         f"({dm.speedup('ga', 4)}) and Rennala ({dm.speedup('rennala', 4)}) reach it, at N = 4 "
         "only")
  reached = sorted(k for k in dmh.runs if k[1] > 1 and all(
      t is not None for t in dmh.first_times(*k)))
  assert reached == [("dana_ga", 4), ("dana_ga", 8), ("dana_ga", 16), ("ga", 4), ("ga", 8),
                     ("rennala", 4)]
  yield ("DANA-GA reaches it at N = 4, 8, 16 (" + ", ".join(
      dmh.speedup("dana_ga", n) for n in (4, 8, 16)) + f"), GA at N = 4 and 8 "
      f"({dmh.speedup('ga', 4)}, {dmh.speedup('ga', 8)}), Rennala at N = 4 "
      f"({dmh.speedup('rennala', 4)})")
  # The methods after the GA paper, on Fashion-MNIST.
  yield f"single-worker SGD {mh.mean('sgd', 1)} on this machine"
  yield f"Simulated time to the target ({mh.mean('sgd', 1)} + 1 = {100 * mh.target():.2f}%)"
  yield (f"(m-sync and SSGD {mh.mean('msync', 4)} against {mh.mean('ga', 4)} at N = 4; m-sync "
         f"{mh.mean('msync', 8)}, SSGD {mh.mean('ssgd', 8)}, Rennala {mh.mean('rennala', 8)} "
         f"against {mh.mean('ga', 8)} at N = 8)")
  assert mh.mean("msync", 4) == mh.mean("ssgd", 4)
  sync32 = sorted(float(mh.mean(a, 32)) for a in ("msync", "ssgd", "rennala"))
  yield (f"({mh.mean('ga', 16)} against m-sync {mh.mean('msync', 16)}, SSGD "
         f"{mh.mean('ssgd', 16)}; {mh.mean('ga', 32)} against {sync32[0]:.2f}–{sync32[-1]:.2f} "
         "at N = 32)")
  yield (f"8 epochs take SSGD {mh.time('ssgd', 4)} time units at N = 4 and "
         f"{mh.time('ssgd', 32)} at N = 32 against {mh.time('ga', 4)} and {mh.time('ga', 32)} "
         f"for the asynchronous ones")
  yield f"halve that at N = 32 ({mh.time('msync', 32)}), Rennala nearly closes it"
  yield f"({mh.time('rennala', 32)})"
  cancelled = np.mean([np.mean(mh.runs[("ringmaster", n)]["cancelled_jobs"]) for n in ns])
  assert 1500 <= cancelled <= 2500
  yield "Ringmaster cancels about 2,000 jobs per run"
  worst = max(mh.values("async_local_sgd", 4))
  yield f"(one seed at N = 4 at {worst:.1f}%)"
  # Adaptive bases.
  bases = {b: sweeps[f"fashion_mnist_bases_{b}"] for b in ("adam", "adamw", "muon")}
  margins = [float(s.mean("sa", n)) - float(s.mean("ga", n))
             for b, s in bases.items() if b != "muon" for n in (4, 16, 32)]
  yield f"beats SA at every N, by {min(margins):.1f}–{max(margins):.1f} points"
  aw, mu = bases["adamw"], bases["muon"]
  loss = lambda s, a: float(s.mean(a, 32)) - float(s.mean("sa", 1))
  yield f"at N = 32 GA over AdamW loses {loss(aw, 'ga'):.0f} points to AdamW alone"
  yield (f"GA over Muon at N = 32 loses {loss(mu, 'ga'):.1f} points to Muon alone (AdamW: "
         f"{loss(aw, 'ga'):.1f}), SA over Muon {loss(mu, 'sa'):.1f} (AdamW: {loss(aw, 'sa'):.1f})")
  yield f"not at N = 4 ({mu.mean('ga', 4)} vs {mu.mean('sa', 4)})"
  # Language modelling.
  lm, lma = sweeps["wikitext103_offline"], sweeps["wikitext103_offline_adamw"]
  sgd, adamw = np.asarray(_bits(lm, "sgd", 1)), np.asarray(_bits(lma, "sa", 1))
  yield (f"(single worker: SGD {sgd.mean():.3f} ± {sgd.std():.3f}, AdamW {adamw.mean():.3f} ± "
         f"{adamw.std():.3f})")
  assert all(lm.count("nag", n, "diverged") == 2 for n in (4, 8, 16))
  # Against simulated time: each evaluation (mean over seeds) against single-worker SGD's
  # curve, linear in time between its evaluations, from its first evaluation on.
  sgd_time, sgd_bits = _bits_against_time(lm, "sgd", 1)

  def above(a, n):
    t, v = _bits_against_time(lm, a, n)
    keep = t >= sgd_time[0]
    return t[keep], v[keep], v[keep] - np.interp(t[keep], sgd_time, sgd_bits)

  assert all(np.all(above("dana_ga", n)[2] < 0) for n in (4, 8))
  t, v, diff = above("dana_ga", 4)
  yield (f"(N = 4: {v[-1]:.3f} against {v[-1] - diff[-1]:.3f} bits at time {t[-1]:,.0f}, "
         "SGD interpolated between its evaluations)")
  assert all(np.all(above(a, n)[2] <= 0) for a, n in (("sa", 4), ("sa", 8), ("ga", 8)))
  ga4 = above("ga", 4)[2]
  assert np.sum(ga4 > 0) == 1
  yield f"(GA at N = 4 {ga4.max():.3f} above at one evaluation)"


def test_every_claim_of_the_prose_is_what_the_results_say(sweeps):
  missing = [c for c in claims(sweeps) if " ".join(c.split()) not in FLAT]
  assert not missing, "README claims not found as the results files give them:\n" + "\n".join(
      missing)


# Numbers of the result sections that are not results: configuration (η, γ, λ, shapes,
# sizes), dates, and run times measured by the clock (results/README.md has them).
NOT_RESULTS = {
    "0.1", "0.9", "1.28", "2.0", "0.7", "0.02", "0.05", "1.0",  # η, γ, timing shapes
    "60,000", "10,000", "15,000", "4.6", "20,000", "100,000",  # data and Monte Carlo sizes
    "8", "20", "100",  # 8×8 digits; Muon's η 20× AdamW's; FOLDOC 100× smaller than WikiText
}
RUN_TIMES = re.compile(r"\d[\d.,]* ?(?:s|min|minutes)\b|\d+ min \d+ s")


def _result_like(text):
  """Decimals, grouped or 4+ digit integers, and numbers with % or ×."""
  text = RUN_TIMES.sub(" ", re.sub(r"\(https?://[^)]*\)|\[[^\]]*\]\([^)]*\)", " ", text))
  text = re.sub(r"20\d\d-\d\d-\d\d|§\d+(?:\.\d+)*", " ", text)  # dates, sections
  pattern = r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d{4,}|\d+(?=%|×))(?![\w])"
  return [m for m in re.findall(pattern, text)]


def test_every_result_number_of_the_readme_is_checked(sweeps):
  checked = set()
  for claim in claims(sweeps):
    checked.update(_result_like(claim))
  for anchor in ("## Main job results", "**The heterogeneous environment**",
                 "Simulated time to the target", "Simulated time to the target (11.03",
                 "### The methods after the GA paper, on digits",
                 "### The methods after the GA paper, on Fashion-MNIST",
                 "### Gap-Aware and Staleness-Aware over Adam", "### Language modelling",
                 "### Speedup model"):
    header, rows = _table_after(anchor)
    for row in rows:  # every cell of these tables is checked above
      checked.update(n for cell in row for n in _result_like(cell))
  unchecked = sorted({n for n in _result_like(FLAT) if n not in checked | NOT_RESULTS})
  assert not unchecked, f"README numbers no test checks: {unchecked}"
