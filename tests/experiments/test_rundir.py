"""A sweep's work directory: fingerprints, one sweep at a time, damaged run files.

The runs are tiny digits sweeps; a run is deterministic, so a point re-run
after its files were damaged must give the numbers of the undamaged run, and
a run with checkpoints the numbers of one without.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import dana_jax as dj
from dana_jax import checkpoint
from experiments import datasets, point, rundir, runfiles, runwriter, sweep, train, validate
from experiments.configs import digits

ROOT = pathlib.Path(__file__).resolve().parents[2]
PERF = "perf/examples_per_second"


def tiny(**overrides):
  config = digits.get_config()
  config.update(dict(algorithms=("ga", "sa"), num_workers=(2,), seeds=(0,), epochs=2,
                     baseline="", hidden=(8,), checkpoint_every_epochs=1.0))
  config.update(overrides)
  return config


@pytest.fixture(scope="module")
def template(tmp_path_factory):
  """A finished sweep (ga_N2, sa_N2, with checkpoints every epoch), copied by each test."""
  workdir = tmp_path_factory.mktemp("template") / "w"
  train.run_sweep(tiny(), workdir)
  return workdir


@pytest.fixture
def workdir(template, tmp_path):
  copy = tmp_path / "w"
  shutil.copytree(template, copy)
  return copy


def stamps(run_dir):
  return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}


def rows(run_dir):
  return [{k: v for k, v in json.loads(line).items() if k != PERF}
          for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def errors(run_dir):
  return json.loads((run_dir / "summary.json").read_text())["final_test_error"]


def refusal(config, workdir, capsys, way="use a new --workdir, or --config.rerun_changed=true"):
  before = {name: stamps(workdir / name) for name in ("ga_N2", "sa_N2")}
  with pytest.raises(validate.ConfigError) as e:
    train.run_sweep(config, workdir)
  message = str(e.value)
  assert "\n" not in message and "skipped: finished" not in capsys.readouterr().out
  assert way in message
  assert before == {name: stamps(workdir / name) for name in ("ga_N2", "sa_N2")}  # untouched
  return message


def test_a_changed_config_or_data_is_refused_naming_the_fields(workdir, capsys, monkeypatch):
  assert "learning_rate: 0.1 → 0.01" in refusal(tiny(learning_rate=0.01), workdir, capsys)
  assert "epochs: 2 → 3" in refusal(tiny(epochs=3), workdir, capsys)
  assert "timing.worker_speed_shape: (none) → 2.0" in refusal(
      tiny(timing=dict(worker_speed_shape=2.0)), workdir, capsys)
  assert "simulator.execution: auto → steps" in refusal(
      tiny(simulator=dict(execution="steps")), workdir, capsys)
  option = tiny(options_by_algorithm=ml_collections.ConfigDict({"ga": {"per_tensor": True}}))
  message = refusal(option, workdir, capsys)
  assert "(ga_N2; algorithm_options.per_tensor: (none) → true)" in message  # sa_N2 alone
  real = datasets.data.digits

  def fewer_examples():  # another source of the same data set: the first 1000 images
    tx, ty, vx, vy = real()
    return tx[:1000], ty[:1000], vx, vy

  monkeypatch.setattr(datasets.data, "digits", fewer_examples)
  assert "data.arrays: " in refusal(tiny(), workdir, capsys)
  monkeypatch.undo()
  # Finished runs that are no point of this sweep but would be reported beside its own.
  message = refusal(tiny(algorithms=("nag",), epochs=3), workdir, capsys,
                    way="use a new --workdir, or move them out of it")
  assert "holds 2 finished run(s) of another sweep (ga_N2, sa_N2; epochs: 2 → 3)" in message
  assert not (workdir / "nag_N2").exists()
  # What does not change a run's numbers, and dropping a point, leave the runs finished.
  train.run_sweep(tiny(algorithms=("sa",), save_final_params=False, checkpoint_every_epochs=0.5,
                       tensorboard=False), workdir)
  assert capsys.readouterr().out.splitlines() == ["[1/1] sa_N2: skipped: finished"]


def test_rerun_changed_reruns_only_the_changed_points(workdir, capsys):
  sa = stamps(workdir / "sa_N2")
  config = tiny(rerun_changed=True,
                options_by_algorithm=ml_collections.ConfigDict({"ga": {"learning_rate": 0.05}}))
  summaries = train.run_sweep(config, workdir)
  out = capsys.readouterr().out
  assert "ga_N2: another configuration's run; deleted to run again" in out
  assert "[2/2] sa_N2: skipped: finished" in out and stamps(workdir / "sa_N2") == sa
  assert summaries[0]["learning_rate"] == 0.05
  stored = json.loads((workdir / "ga_N2" / rundir.FINGERPRINT).read_text())
  assert stored["learning_rate"] == 0.05
  train.run_sweep(config, workdir)  # now both are of this configuration
  assert capsys.readouterr().out.count("skipped: finished") == 2


def test_runs_without_a_fingerprint_are_compared_by_their_config(workdir, capsys):
  for name in ("ga_N2", "sa_N2"):
    (workdir / name / rundir.FINGERPRINT).unlink()
  config = json.loads((workdir / "ga_N2" / "config.json").read_text())
  del config["simulator"]  # as if written before the group existed (at its defaults)
  (workdir / "ga_N2" / "config.json").write_text(json.dumps(config))
  train.run_sweep(tiny(), workdir)
  assert capsys.readouterr().out.count("skipped: finished") == 2
  assert "learning_rate: 0.1 → 0.2" in refusal(tiny(learning_rate=0.2), workdir, capsys)
  (workdir / "ga_N2" / "config.json").write_text('{"algorithm": "ga", "num_w')
  with pytest.raises(validate.ConfigError, match=r"ga_N2/config.json: not JSON .* no "
                     r"fingerprint.json: .* delete .*ga_N2 to re-run it"):
    train.run_sweep(tiny(), workdir)


def test_fingerprint_of_a_run_is_its_own_fields():
  data = {"dataset": "digits"}
  def point(config):
    return [p for p in train.sweep_points(config) if p["name"] == "ga_N2"][0]

  base = runwriter.run_fingerprints(tiny(), point(tiny()), data)
  same = tiny(num_workers=(2, 8), algorithms=("ga", "nag"), baseline="sgd",
              options_by_algorithm=ml_collections.ConfigDict({"nag": {"learning_rate": 0.3}}))
  assert runwriter.run_fingerprints(same, point(same), data) == base
  other = tiny(algorithm_options=ml_collections.ConfigDict({"beta": 0.5}))
  assert runwriter.run_fingerprints(other, point(other), data)[0]["algorithm_options.beta"] == 0.5


def damage_truncate(path, keep):
  data = path.read_bytes()
  path.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])


@pytest.mark.slow  # a sweep per kind of damage; a damaged checkpoint stays in the default run
def test_damaged_run_files_are_set_aside_and_their_points_rerun(template, workdir, capsys):
  """Each kind of file: a torn last metrics line, final parameters truncated, a summary
  empty or truncated, a config.json that is not JSON. Re-run without checkpoints: the
  numbers must still be the template's (checkpointing changes nothing)."""
  plain = tiny(checkpoint_every_epochs=0.0)
  ga, sa = workdir / "ga_N2", workdir / "sa_N2"
  damage_truncate(ga / "metrics.jsonl", -7)  # the last line torn
  kept = stamps(sa)
  train.run_sweep(plain, workdir)
  out = capsys.readouterr().out
  assert re.search(r"ga_N2/metrics.jsonl: line (\d+) of \1 is not JSON \(a torn last line\); "
                   "set aside as metrics.jsonl.damaged; the run is re-run", out)
  assert (ga / "metrics.jsonl.damaged").exists() and stamps(sa) == kept
  assert "[2/2] sa_N2: skipped: finished" in out
  assert rows(ga) == rows(template / "ga_N2") and errors(ga) == errors(template / "ga_N2")

  damage_truncate(ga / "final_params.npz", 100)
  (sa / "summary.json").write_text("")
  train.run_sweep(plain, workdir)
  out = capsys.readouterr().out
  assert "ga_N2/final_params.npz: unreadable" in out and "sa_N2/summary.json: empty" in out
  for name in ("ga_N2", "sa_N2"):
    assert rows(workdir / name) == rows(template / name)
    assert errors(workdir / name) == errors(template / name)
    with np.load(workdir / name / "final_params.npz") as a, \
         np.load(template / name / "final_params.npz") as b:
      assert sorted(a) == sorted(b)
      for key in a:
        np.testing.assert_array_equal(a[key], b[key])

  damage_truncate(ga / "summary.json", 40)
  (sa / "config.json").write_text("{")
  kept = {k: v for k, v in stamps(sa).items() if k != "config.json"}
  train.run_sweep(plain, workdir)
  out = capsys.readouterr().out
  assert "ga_N2/summary.json: not JSON" in out and "set aside as summary.json.damaged" in out
  assert "sa_N2/config.json: not JSON" in out and "rewritten" in out
  assert "[2/2] sa_N2: skipped: finished" in out  # its numbers were never in doubt
  assert json.loads((sa / "config.json").read_text())["algorithm"] == "sa"
  assert {k: v for k, v in stamps(sa).items() if k != "config.json"} == kept
  assert errors(ga) == errors(template / "ga_N2")
  train.run_sweep(plain, workdir)
  assert capsys.readouterr().out.count("skipped: finished") == 2


class Interrupt(Exception):
  pass


def interrupt_in_chunk(monkeypatch, chunk):
  """Makes the sweep's simulation raise in the callback of its ``chunk``-th chunk (after
  ``chunk`` - 1 checkpoints)."""
  real = dj.simulate

  def simulate(*args, callback, **kwargs):
    seen = []

    def interrupted(record):
      callback(record)
      seen.append(record)
      if len(seen) == chunk:
        raise Interrupt

    return real(*args, callback=interrupted, **kwargs)

  monkeypatch.setattr(point.dj, "simulate", simulate)


def test_a_damaged_checkpoint_is_dropped_and_a_good_one_resumed(template, tmp_path, capsys,
                                                                monkeypatch):
  config = tiny(algorithms=("ga",))
  with monkeypatch.context() as m:
    interrupt_in_chunk(m, 2)
    with pytest.raises(Interrupt):
      train.run_sweep(config, tmp_path / "good")
  assert not (tmp_path / "good" / "ga_N2" / "summary.json").exists()
  shutil.copytree(tmp_path / "good", tmp_path / "damaged")
  (meta,) = (tmp_path / "damaged" / "ga_N2" / "checkpoint").glob("*/meta/metadata")
  meta.write_text("")
  restored = []
  real = checkpoint.Checkpointer.restore

  def restore(self, target):
    try:
      got = real(self, target)
    except checkpoint.DamagedCheckpoint:
      restored.append("damaged")
      raise
    restored.append(None if got is None else len(got[1]))  # chunks restored
    return got

  monkeypatch.setattr(checkpoint.Checkpointer, "restore", restore)
  for name, what in (("good", "resumed"), ("damaged", "afresh")):
    capsys.readouterr()
    run = tmp_path / name / "ga_N2"
    assert (run / "checkpoint").is_dir()
    restored.clear()
    train.run_sweep(config, tmp_path / name)
    out = capsys.readouterr().out
    assert ("holds a damaged checkpoint" in out) == (what == "afresh")
    if what == "resumed":  # from the first chunk's checkpoint
      assert restored == [1]
    else:  # dropped, then started afresh on an empty directory
      assert restored == ["damaged", None]
    assert rows(run) == rows(template / "ga_N2") and errors(run) == errors(template / "ga_N2")
    assert not (run / "checkpoint").exists()


HOLD = """
import sys, time
from experiments import rundir
with rundir.sweep_lock(sys.argv[1]):
  print("held", flush=True)
  time.sleep(120)
"""


def test_one_sweep_per_workdir_and_a_killed_ones_lock_is_taken_over(tmp_path, capsys):
  holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "w")], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(validate.ConfigError) as e:
      train.run_sweep(tiny(), tmp_path / "w")
    message = str(e.value)
    assert "\n" not in message and "is in use by another sweep" in message
    info = json.loads((tmp_path / "w" / rundir.LOCK).read_text())
    assert info["pid"] == holder.pid and f"pid {holder.pid} on {info['host']}, started " \
        f"{info['started']}" in message
    assert not (tmp_path / "w" / "ga_N2").exists()
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with rundir.sweep_lock(tmp_path / "w") as mine:
    assert mine["pid"] == os.getpid()
    assert json.loads((tmp_path / "w" / rundir.LOCK).read_text())["pid"] == os.getpid()
  assert f"took over the lock of an ended sweep (pid {holder.pid}" in capsys.readouterr().out
  with rundir.sweep_lock(tmp_path / "w"):  # released at the end: no note
    pass
  assert "took over" not in capsys.readouterr().out


def test_a_torn_metrics_line_is_left_out_by_the_report(tmp_path, capsys):
  run = tmp_path / "ga_N2"
  run.mkdir()
  (run / "metrics.jsonl").write_text('{"step": 1, "seed": 0}\n{"step": 2, "se')
  assert runfiles.load_metrics(run) == [{"step": 1, "seed": 0}]
  assert "line 2 of 2 is not JSON" in capsys.readouterr().err


def test_the_per_run_line_counts_diverged_and_failed_seeds_apart():
  def point(errors, diverged, failed):
    return [{"seeds": list(range(len(errors))), "final_test_error": errors,
             "diverged": diverged, "failed": failed}]

  # A diverged seed's error is 0.9 (a constant prediction), as in the report.
  assert sweep.result_line(point([0.02, 0.0266, 0.9], [False, False, True], [False] * 3)) == \
      "final test error 2.33% (mean of 2 seeds; 1 diverged)"
  assert sweep.result_line(point([0.9, 0.03, float("nan")], [False, False, True],
                                 [True, False, False])) == \
      "final test error 3.00% (mean of 1 seed; 1 diverged; 1 failed)"
  assert sweep.result_line(point([0.1, 0.2], [False] * 2, [False] * 2)) == \
      "final test error 15.00% (mean of 2 seeds)"
  assert sweep.result_line(point([0.9] * 3, [True] * 3, [False] * 3)) == \
      "every seed diverged (3 of 3)"
  assert sweep.result_line(point([0.9] * 2, [True, False], [False, True])) == \
      "no seed learned (1 diverged; 1 failed)"


def test_a_file_where_the_checkpoint_goes_is_removed_and_the_run_starts_afresh(tmp_path,
                                                                              capsys):
  run = tmp_path / "runs" / "ga_N2"
  run.mkdir(parents=True)
  (run / "checkpoint").write_text("x")
  (summary,) = train.run_sweep(tiny(algorithms=("ga",)), tmp_path / "runs")
  assert summary["num_workers"] == 2 and (run / "summary.json").is_file()
  assert "it is a file, not a directory" in capsys.readouterr().out
