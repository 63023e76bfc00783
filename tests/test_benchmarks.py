"""The benchmark command runs, measures every reference it is asked for, and records them."""

import json

import pytest

from benchmarks import plot, profile, run


def test_benchmark_run_records_engine_and_references(tmp_path):
  out = tmp_path / "run.jsonl"
  run.main(["--model", "mlp64", "--workers", "2", "--steps", "10", "--repeats", "1",
            "--references", "sync,naive", "--out", str(out)])
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r["what"] for r in rows] == ["engine", "sync_loop", "sync_scan", "naive"]
  for r in rows:
    assert r["seconds_per_step"] > 0 and r["device"] and r["jax"]
    assert r["command"].startswith("python -m benchmarks.run --model mlp64")
  assert rows[0]["memory_estimate_bytes"] > 0 and rows[0]["compile_seconds"] >= 0
  assert all(r["engine_over_this"] > 0 for r in rows[1:])
  run.main(["--model", "mlp64", "--workers", "1,3", "--scaling", "--steps", "10",
            "--repeats", "1", "--out", str(out)])
  plot.main(["--results", str(out), "--out", str(tmp_path)])
  assert (tmp_path / "scaling_workers.png").exists()
  with pytest.raises(SystemExit):
    run.main(["--references", "cluster", "--out", str(out)])


def test_torch_reference_simulator_runs():
  pytest.importorskip("torch")
  from benchmarks import torch_reference
  result = torch_reference.measure("mlp", 3, 8, 5, repeats=1)
  assert result["seconds_per_step"] > 0
  import torch
  assert result["torch_device"] == ("cuda" if torch.cuda.is_available() else "cpu")
  with pytest.raises(ValueError, match="device='tpu'"):
    torch_reference.measure("mlp", 3, 8, 5, repeats=1, device="tpu")


def test_profile_reports_the_ops_of_a_master_step():
  ms, ops = profile.main(["--model", "digits_mlp", "--workers", "2", "--steps", "20"])
  assert ms > 0 and ops and all(micros > 0 for _, micros in ops)
  assert any("dynamic-update-slice" in name for name, _ in ops)  # the read-copy row write
  with pytest.raises(SystemExit):
    profile.main(["--steps", "0"])
