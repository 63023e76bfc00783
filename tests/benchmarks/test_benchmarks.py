"""The benchmark command runs, measures every reference it is asked for, and records them."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import methods, plot, profile, run


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
  assert all(r["replicas"] == 1 and r["timing"] == "homogeneous" for r in rows)
  assert rows[0]["seconds_per_step_per_replica"] == rows[0]["seconds_per_step"]
  assert all(r["engine_over_this"] > 0 for r in rows[1:])
  run.main(["--model", "mlp64", "--workers", "1,3", "--scaling", "--steps", "10",
            "--repeats", "1", "--out", str(out)])
  plot.main(["--results", str(out), "--out", str(tmp_path)])
  assert (tmp_path / "scaling_workers.png").exists()
  with pytest.raises(SystemExit):
    run.main(["--references", "cluster", "--out", str(out)])


@pytest.mark.slow  # test_benchmark_run_records_engine_and_references stays in the default run
def test_methods_table_records_each_method_against_nag(tmp_path, capsys):
  assert methods._resolve({"max_delay": "N/4", "num_gradients": "0.9N", "x": 2}, 8) == {
      "max_delay": 2, "num_gradients": 7, "x": 2}
  out = tmp_path / "methods.jsonl"
  methods.main(["--model", "digits_mlp", "--workers", "4", "--steps", "12", "--repeats", "1",
                "--only", "ringmaster,rennala", "--out", str(out)])
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r["method"] for r in rows] == [
      "nag", "ringmaster R=N", "ringmaster R=N/4", "ringmaster R=N/4 cancel=False",
      "rennala S=N"]
  assert rows[0]["over_nag"] == 1.0 and all(r["over_nag"] > 0 for r in rows)
  assert rows[2]["options"] == {"max_delay": 1} and rows[4]["gradients_per_step"] == 4
  assert rows[4]["seconds_per_gradient"] == pytest.approx(rows[4]["seconds_per_step"] / 4)
  assert "rennala S=N" in capsys.readouterr().out


def test_torch_reference_simulator_runs():
  pytest.importorskip("torch")
  from benchmarks import torch_reference
  result = torch_reference.measure("mlp", 3, 8, 5, repeats=1)
  assert result["seconds_per_step"] > 0
  import torch
  assert result["torch_device"] == ("cuda" if torch.cuda.is_available() else "cpu")
  with pytest.raises(ValueError, match="device='tpu'"):
    torch_reference.measure("mlp", 3, 8, 5, repeats=1, device="tpu")


@pytest.mark.slow  # test_benchmark_run_records_engine_and_references stays in the default run
def test_profile_reports_the_ops_of_a_master_step():
  ms, ops = profile.main(["--model", "digits_mlp", "--workers", "2", "--steps", "20"])
  assert ms > 0 and ops and all(micros > 0 for _, micros in ops)
  assert any("dynamic-update-slice" in name for name, _ in ops)  # the read-copy row write
  with pytest.raises(SystemExit):
    profile.main(["--steps", "0"])


@pytest.mark.slow  # test_benchmark_run_records_engine_and_references stays in the default run
def test_replica_table_records_per_replica_costs_and_ratios(tmp_path, capsys):
  out = tmp_path / "run.jsonl"
  run.main(["--replica-table", "--model", "digits_mlp", "--workers", "2", "--steps", "4",
            "--repeats", "1", "--replicas", "1,2", "--execution", "blocks",
            "--timing", "heterogeneous", "--compile-cache", str(tmp_path / "cache"),
            "--out", str(out)])
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [(r["replicas"], r["replica_execution"], r["execution"], r["timing"],
           r["block_size"]) for r in rows] == [
      (1, None, "blocks", "heterogeneous", 2), (2, "vmap", "blocks", "heterogeneous", 2),
      (2, "loop", "blocks", "heterogeneous", 2)]
  single, *doubles = rows
  assert all(r["replica_table"] and r["what"] == "engine" for r in rows)
  for double in doubles:
    assert double["seconds_per_step_per_replica"] == pytest.approx(
        double["seconds_per_step"] / 2)
    assert double["memory_estimate_total_bytes"] == 2 * double["memory_estimate_bytes"]
    assert double["replica_ratio"] == pytest.approx(
        double["seconds_per_step_per_replica"] / single["seconds_per_step_per_replica"])
  assert "replica_ratio" not in single
  printed = capsys.readouterr().out
  assert "R=2 vmap ratio" in printed and "worst ratio R=2 loop" in printed
  for bad in (["--replicas", "1,4"], ["--replicas", "0"], ["--scaling", "--replica-table"],
              ["--replica-execution", "pmap"], ["--replica-execution", "vmap,loop"]):
    with pytest.raises(SystemExit):
      run.main(bad + ["--out", str(out)])


@pytest.mark.slow  # 2-3 min on 2 cores, nearly all compilation: run with -m slow
def test_gpu_script_tiny_writes_its_rows(tmp_path):
  """``benchmarks/gpu.sh`` end to end on the CPU, tiny (DANA_BENCH_TINY=1)."""
  root = pathlib.Path(run.__file__).parent.parent
  env = {**os.environ, "PYTHON": sys.executable, "DANA_BENCH_TINY": "1"}
  done = subprocess.run(["bash", str(root / "benchmarks" / "gpu.sh"), str(tmp_path / "res")],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "== device" in done.stdout and "== targets" in done.stdout
  rows = [json.loads(line) for line in (tmp_path / "res" / "run.jsonl").read_text().splitlines()]
  assert len({r["tag"] for r in rows}) == 1 and rows[0]["tag"].startswith("gpu.sh ")
  engine = [r for r in rows if r["what"] == "engine"]
  assert [(r["execution"], r["replicas"], r["replica_execution"]) for r in engine] == [
      ("blocks", 1, None), ("steps", 1, None), ("blocks", 4, "vmap"), ("steps", 4, "vmap"),
      ("blocks", 4, "loop"), ("steps", 4, "loop")]
  assert "the faster replica execution here is" in done.stdout
  for r in engine:
    assert r["model"] == "digits_mlp" and r["num_workers"] == 4 and r["steps"] == 3
    assert r["block_size"] == (4 if r["execution"] == "blocks" else 1)
    assert r["seconds_per_step_per_replica"] == pytest.approx(
        r["seconds_per_step"] / r["replicas"])
    assert r["timing"] == "homogeneous" and r["device"] and r["jax"]
    assert r["command"].startswith("python -m benchmarks.run --model digits_mlp")
  sync = sorted((r["what"], r["batch_size"]) for r in rows if r["what"].startswith("sync"))
  assert sync == [("sync_loop", 32), ("sync_loop", 128), ("sync_scan", 32), ("sync_scan", 128)]
  torch_rows = [r for r in rows if r["what"] == "torch"]
  try:
    import torch  # noqa: F401
  except ImportError:
    assert not torch_rows and "PyTorch reference is skipped" in done.stdout
  else:
    assert len(torch_rows) == 1 and torch_rows[0]["seconds_per_step"] > 0
  assert all(r["seconds_per_step"] > 0 for r in rows)
  # 7: the environment rows, every part off and on, in both executions.
  env_rows = [json.loads(line) for line in
              (tmp_path / "res" / "environment.jsonl").read_text().splitlines()]
  steps_rows = [(r["execution"], r["environment"]) for r in env_rows
                if r["what"] == "environment step"]
  assert steps_rows == [(e, label) for e in ("steps", "blocks") for label in
                        ("off", "links+queue+slowdowns", "links+queue+slowdowns+failures")]
  assert [r["environment"] for r in env_rows if r["what"] == "environment schedule"] == [
      "off", "links+queue+slowdowns", "links+queue+slowdowns+failures"]


@pytest.mark.slow  # test_benchmark_run_records_engine_and_references stays in the default run
def test_language_model_benchmark_measures_engine_plain_and_memory(tmp_path):
  from benchmarks import lm
  m, (x, y) = lm.model(), lm.windows(n=256)
  plain = lm.plain_step_seconds(m, x, y, steps=2, repeats=1)
  seconds, memory, per_step = lm.engine_step_seconds(m, x, y, "async_local_sgd", 2, lm.LOCAL,
                                                     steps=2, repeats=1)
  assert plain > 0 and seconds > 0 and per_step == 4  # H = 4 batches per master step
  params = memory["params"]
  # Per worker: its read copy and its inner AdamW moments (two more copies), float32.
  assert memory["worker_stacks"] == 2 * (params + 2 * params + 4)  # + AdamW's int32 count
