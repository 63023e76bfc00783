"""experiments.goodput: the schedule-only goodput comparison under failures."""

import csv
import math

from experiments import goodput


def test_goodput_writes_every_method_and_mtbf(tmp_path, capsys):
  assert goodput.main(["--num-workers", "4", "--gradients", "160", "--out", str(tmp_path)]) == 0
  rows = list(csv.DictReader(open(tmp_path / "goodput.csv")))
  assert len(rows) == len(goodput.MTBFS) * len(goodput.METHODS)
  assert "no model is trained" in (tmp_path / "goodput.md").read_text()
  by = {(r["method"], float(r["mtbf"])): r for r in rows}
  # Never failing, waiting for every worker is the plain round: the same schedule.
  never = math.inf
  assert by[("ssgd elastic", never)]["elapsed"] == by[("ssgd wait", never)]["elapsed"]
  assert float(by[("async", never)]["down_share"]) == 0.0
  for r in rows:
    assert 0 < float(r["goodput"]) <= 1
    # Async applies one gradient per step; a round at most one per worker (fewer when down).
    if r["method"] == "async":
      assert int(r["gradients_applied"]) == 160
    else:
      assert 0 < int(r["gradients_applied"]) <= int(r["steps"]) * 4


def test_a_bad_count_is_one_line(tmp_path, capsys):
  assert goodput.main(["--gradients", "0", "--out", str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err and "--gradients=0" in err
