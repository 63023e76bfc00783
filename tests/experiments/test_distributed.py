"""The experiment driver on a mesh and over several processes (jax.distributed on CPU)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import train
from experiments.configs import digits

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = {"algorithms": ("dana_ga",), "num_workers": (4,), "seeds": (0, 1, 2), "epochs": 1,
        "baseline": ""}


def tiny_config(**fields):
  config = digits.get_config()
  config.update({**TINY, **fields})
  return config


def read_metrics(run_dir):
  rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  return rows, json.loads((run_dir / "summary.json").read_text())


def assert_same_metrics(a_dir, b_dir):
  (rows_a, sum_a), (rows_b, sum_b) = read_metrics(a_dir), read_metrics(b_dir)
  assert len(rows_a) == len(rows_b) == 3  # one chunk (epoch) × 3 seeds, no padded repeats
  for ra, rb in zip(rows_a, rows_b, strict=True):
    assert ra["seed"] == rb["seed"] and ra["step"] == rb["step"]
    for key in ("loss/train", "gap/rms", "lag/mean", "test/error", "train/error"):
      np.testing.assert_allclose(ra[key], rb[key], rtol=1e-4, atol=1e-6, err_msg=key)
  assert sum_a["final_test_error"] == pytest.approx(sum_b["final_test_error"], abs=1e-9)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("one_device")
  train.run_sweep(tiny_config(), workdir)
  return workdir / "dana_ga_N4"


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (host) devices")
def test_sweep_on_a_mesh_equals_one_device_and_pads_replicas(one_device, tmp_path):
  config = tiny_config()
  config.mesh.replicas, config.mesh.workers, config.simulator.execution = 2, 2, "blocks"
  train.run_sweep(config, tmp_path)
  assert_same_metrics(tmp_path / "dana_ga_N4", one_device)
  summary = json.loads((tmp_path / "dana_ga_N4" / "summary.json").read_text())
  assert summary["replicas_in_program"] == 4 and summary["seeds"] == [0, 1, 2]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # two fresh JAX processes and a coordinator
def test_two_processes_split_the_replicas_and_only_process_0_writes(one_device, tmp_path):
  port = free_port()
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  overrides = ["--config.algorithms=('dana_ga',)", "--config.num_workers=(4,)",
               "--config.seeds=(0,1,2)", "--config.epochs=1", "--config.baseline=",
               "--config.host_devices=1", "--config.mesh.replicas=2",
               "--config.distributed.initialize=True",
               f"--config.distributed.coordinator_address=localhost:{port}",
               "--config.distributed.num_processes=2"]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "experiments.digits", f"--workdir={tmp_path / f'p{i}'}",
       *overrides, f"--config.distributed.process_id={i}"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  for p in procs:
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]
  assert_same_metrics(tmp_path / "p0" / "dana_ga_N4", one_device)
  assert (tmp_path / "p0" / "results.md").exists()
  assert not (tmp_path / "p1").exists()  # process 1 computed its replicas but wrote nothing


def test_host_devices_that_are_not_in_effect_are_refused():
  config = tiny_config(host_devices=3)
  with pytest.raises(ValueError, match="config.host_devices=3"):
    train.setup_devices(config)
