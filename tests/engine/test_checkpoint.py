"""Checkpoint and resume: an interrupted run continues to exactly the uninterrupted result."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_engine import MLP, digits_subset, flat

import dana_jax as dj

ROOT = pathlib.Path(__file__).resolve().parents[2]


def simulator(lr=0.05, execution="steps"):
  x, y = digits_subset()
  return dj.Simulator(MLP, "dana_ga", x, y, num_workers=4, batch_size=16,
                      hyperparams=dj.Hyperparams(lr, 0.9, 1e-3), timing=dj.heterogeneous(),
                      execution=execution, seeds=[0, 1])


class Interrupt(Exception):
  pass


def interrupted_after(chunks):
  seen = []

  def callback(record):
    seen.append(record["step"])
    if len(seen) == chunks:
      raise Interrupt

  return callback


@pytest.mark.parametrize("execution", ["steps", pytest.param("blocks", marks=pytest.mark.slow)])
def test_resumed_simulation_equals_uninterrupted(execution, tmp_path):
  x, y = digits_subset()
  kwargs = dict(chunk_steps=10, eval_data=(x[:64], y[:64]), progress=False)
  whole = dj.simulate(simulator(execution=execution), 60, **kwargs)
  with pytest.raises(Interrupt):  # dies in the callback of the 4th chunk, after 3 saves
    dj.simulate(simulator(execution=execution), 60, checkpoint_dir=tmp_path / "ckpt",
                checkpoint_every_steps=20, callback=interrupted_after(4), **kwargs)
  replayed = []
  resumed = dj.simulate(simulator(execution=execution), 60, checkpoint_dir=tmp_path / "ckpt",
                        checkpoint_every_steps=20, callback=replayed.append, **kwargs)
  assert [r["step"] for r in replayed] == [10, 20, 30, 40, 50, 60]  # 10, 20 restored
  strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")}
                     for r in h]
  assert strip(resumed.history) == strip(whole.history)
  np.testing.assert_array_equal(flat(jax.device_get(resumed.state)),
                                flat(jax.device_get(whole.state)))


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
  with pytest.raises(Interrupt):
    dj.simulate(simulator(), 40, chunk_steps=10, checkpoint_dir=tmp_path, progress=False,
                callback=interrupted_after(2))
  with pytest.raises(ValueError, match=r"different configuration \(hyperparams"):
    dj.simulate(simulator(lr=0.1), 40, chunk_steps=10, checkpoint_dir=tmp_path, progress=False)
  with pytest.raises(ValueError, match="chunk_steps: '10' in the checkpoint, '20' now"):
    dj.simulate(simulator(), 40, chunk_steps=20, checkpoint_dir=tmp_path, progress=False)


SWEEP = ["--config.algorithms=('dana_ga',)", "--config.num_workers=(4,)",
         "--config.seeds=(0,1)", "--config.epochs=12", "--config.baseline=",
         "--config.chunk_steps=5", "--config.checkpoint_every_epochs=0.01"]
PERF = ("perf/examples_per_second",)


def sweep(workdir):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  return subprocess.Popen([sys.executable, "-m", "experiments.digits", f"--workdir={workdir}",
                           *SWEEP], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def metrics(run):
  return [{k: v for k, v in json.loads(line).items() if k not in PERF}
          for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # a sweep process killed and rerun; in-process resume runs by default
def test_sigkill_mid_run_then_same_command_resumes_to_identical_files(tmp_path):
  whole, killed = tmp_path / "whole", tmp_path / "killed"
  reference = sweep(whole)
  _, err = reference.communicate(timeout=600)
  assert reference.returncode == 0, err[-3000:]

  proc = sweep(killed)
  log = killed / "dana_ga_N4" / "metrics.jsonl"
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and proc.poll() is None:
    if log.exists() and len(log.read_text().splitlines()) >= 12:  # 6 chunks done and saved
      break
    time.sleep(0.02)
  assert proc.poll() is None, "the run finished before it could be killed"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not (killed / "dana_ga_N4" / "summary.json").exists()
  assert (killed / "dana_ga_N4" / "checkpoint").is_dir()

  again = sweep(killed)  # the same command
  _, err = again.communicate(timeout=600)
  assert again.returncode == 0, err[-3000:]
  run_w, run_k = whole / "dana_ga_N4", killed / "dana_ga_N4"
  assert metrics(run_k) == metrics(run_w)
  with np.load(run_w / "final_params.npz") as a, np.load(run_k / "final_params.npz") as b:
    assert sorted(a) == sorted(b) and len(a) > 0
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  summary = json.loads((run_k / "summary.json").read_text())
  assert summary["final_test_error"] == json.loads(
      (run_w / "summary.json").read_text())["final_test_error"]
  assert not (run_k / "checkpoint").exists()  # removed once the summary is written


def test_a_damaged_checkpoint_is_one_error_naming_its_directory(tmp_path):
  """Every part of a checkpoint emptied or missing: a DamagedCheckpoint (a ConfigError)
  naming the directory, not orbax's KeyError or a JSONDecodeError; an empty directory
  (no checkpoint yet) starts afresh."""
  import shutil

  from dana_jax.checkpoint import DamagedCheckpoint
  good = tmp_path / "good"
  with pytest.raises(Interrupt):
    dj.simulate(simulator(), 40, chunk_steps=10, checkpoint_dir=good, progress=False,
                callback=interrupted_after(2))
  (step,) = [p.name for p in good.iterdir() if p.name.isdigit()]
  damages = {
      "meta emptied": lambda d: (d / step / "meta" / "metadata").write_text(""),
      "state metadata emptied": lambda d: (d / step / "state" / "_METADATA").write_text(""),
      "state missing": lambda d: shutil.rmtree(d / step / "state"),
      "step emptied": lambda d: [shutil.rmtree(d / step), (d / step).mkdir()],
      "array data emptied": lambda d: [p.write_bytes(b"") for p in
                                       (d / step / "state").rglob("d/*") if p.is_file()],
  }
  sim = simulator()
  for name, damage in damages.items():
    broken = tmp_path / name.replace(" ", "_")
    shutil.copytree(good, broken)
    damage(broken)
    with pytest.raises(DamagedCheckpoint) as e:
      dj.simulate(sim, 40, chunk_steps=10, checkpoint_dir=broken, progress=False)
    message = str(e.value)
    assert message.startswith(f"checkpoint_dir={str(broken.resolve())!r} holds a damaged "
                              f"checkpoint (step {step})"), (name, message)
    assert "\n" not in message and message.endswith("delete it to start the run afresh.")
  (tmp_path / "file").write_text("")
  with pytest.raises(DamagedCheckpoint, match="it is a file, not a directory") as e:
    dj.simulate(sim, 40, chunk_steps=10, checkpoint_dir=tmp_path / "file", progress=False)
  assert "delete it" not in str(e.value)  # a path given by mistake may be anyone's file
  assert (tmp_path / "file").exists()
