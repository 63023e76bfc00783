"""The command line as a user meets it: --help, one-line errors, every field settable, quiet
output, a model of one's own, TensorBoard files."""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from experiments import cli, plot, preflight, train, validate
from experiments.configs import digits

ROOT = pathlib.Path(__file__).resolve().parents[2]
# A tiny sweep the mistakes are made on (later flags override earlier ones).
TINY = ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
        "--config.epochs=1", "--config.baseline="]


def run(*args, workdir=None):
  command = [sys.executable, "-m", "experiments.digits", *TINY, *args]
  if workdir is not None:
    command.append(f"--workdir={workdir}")
  return subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


# (name, flags, what the one error line must name); each through the real command line.
MISTAKES = [
    ("unknown field", ["--config.epohcs=3"], "config.epohcs", "did you mean config.epochs?"),
    ("preset that does not exist", ["--config=experiments/configs/digits.py:nosuch"],
     "preset 'nosuch'", "'modern'"),
    ("wrong type", ["--config.epochs=abc"], "config.epochs='abc'", "need an integer"),
    ("float for an integer", ["--config.batch_size=1.5"], "config.batch_size", "integer"),
    ("option the baseline does not take", ["--config.baseline=sgd",
                                           "--config.algorithm_options.penalty=max"],
     "config.algorithm_options", "options_by_algorithm"),
    ("option the algorithm does not take", ["--config.options_by_algorithm.ga.nosuch=1"],
     "config.options_by_algorithm.ga", "'penalty'"),
    ("more workers than fit in memory", ["--config.num_workers=100000000"],
     "config.num_workers: num_workers=100000000", "GiB"),
    ("unknown algorithm", ["--config.algorithms=nosuch"], "config.algorithms", "'dana_ga'"),
    ("unknown timing", ["--config.timing=poisson"], "config.timing", "'heterogeneous'"),
    ("unknown execution", ["--config.simulator.execution=fast"], "config.simulator", "'blocks'"),
    ("unknown replica execution", ["--config.simulator.replica_execution=pmap"],
     "config.simulator", "'loop'"),
    ("a field of the earlier layout", ["--config.timing_shape=2"],
     "config.timing_shape is gone", "use --config.timing.shape"),
    ("momentum out of range", ["--config.momentum=2"], "config.momentum", "(−1, 1)"),
    ("negative worker speeds", ["--config.timing.worker_speed_shape=-1"],
     "config.timing: timing.worker_speed_shape=-1", "positive"),
    ("model that cannot be imported", ["--config.model=nosuchpkg.mod:make"],
     "config.model", "cannot import"),
    ("a group set whole", ["--config.mesh=3"], "config.mesh", "config.mesh.workers"),
    ("unknown flag", ["--nosuch=1"], "--nosuch", "--workdir"),
    ("positional argument", ["extra"], "'extra'", "--FLAG=VALUE"),
    ("bad verbosity", ["--verbosity=9"], "--verbosity='9'", "0 (warnings"),
    ("missing config file", ["--config=nosuch.py"], "--config='nosuch.py'", "no such .py file"),
    ("workdir not writable", ["--workdir=/proc/dana_jax_test/runs"], "--workdir",
     "not writable"),
]


def test_every_mistake_is_one_error_line_and_writes_nothing(tmp_path):
  (tmp_path / "a_file").write_text("x")
  cases = MISTAKES + [
      ("workdir is a file", [f"--workdir={tmp_path / 'a_file'}"], "--workdir", "is a file"),
      ("preset of a config without presets",
       [f"--config={_config_without_presets(tmp_path)}:x"], "--config=", "has no presets")]

  def attempt(case):
    name, flags, field, allowed = case
    workdir = tmp_path / name.replace(" ", "_")
    explicit = any(f.startswith("--workdir") for f in flags)
    return case, run(*flags, workdir=None if explicit else workdir), workdir

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    results = list(pool.map(attempt, cases))
  assert len(results) >= 15
  for (name, _, field, allowed), done, workdir in results:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (name, done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout, name
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
    assert field in lines[0] and allowed in lines[0], (name, lines[0])
    assert not workdir.exists(), name  # nothing half-written


def test_real_processes_fail_in_one_line_where_in_process_cannot_show_it(tmp_path):
  """What only a fresh process shows: jax not yet started when jax.distributed would start
  (no cluster: one line in seconds, not a hang), argv bytes that are not UTF-8, and the
  speedup model's old flags (once a ZeroDivisionError and an empty work directory)."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri")}
  env["PYTHONPATH"] = str(ROOT)
  cases = [
      (["experiments.digits", *TINY, "--config.distributed.initialize=True"],
       "config.distributed.initialize=True", "no cluster was detected"),
      (["experiments.digits", *TINY, b"--config.timing=\xff\xfe"], "--config.timing=",
       "valid UTF-8"),
      (["experiments.speedup", "--workers=0"], "--workers",
       "did you mean --config.num_workers?"),
      (["experiments.speedup", "--config.runs=0"], "config.runs=0", "≥ 1"),
  ]

  def attempt(i):
    args, field, allowed = cases[i]
    workdir = tmp_path / f"w{i}"
    return subprocess.run([sys.executable, "-m", *args, f"--workdir={workdir}"],
                          capture_output=True, cwd=ROOT, env=env, timeout=120), workdir

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    results = list(pool.map(attempt, range(len(cases))))
  for (args, field, allowed), (done, workdir) in zip(cases, results, strict=True):
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, (args, err[-2000:])
    assert "Traceback" not in err, (args, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
    assert field in lines[0] and allowed in lines[0], (args, lines[0])
    assert not workdir.exists(), args


def _config_without_presets(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text("from experiments.configs import digits\n\n"
                  "def get_config():\n  return digits.get_config()\n")
  return path


def test_help_lists_presets_fields_and_options():
  out = subprocess.run([sys.executable, "-m", "experiments.fashion_mnist", "--help"],
                       capture_output=True, text=True, cwd=ROOT, check=True).stdout
  assert out.startswith("usage: python -m experiments.fashion_mnist")
  presets = out[out.index("Presets"):out.index("Flags:")]
  for name in ("main (default)", "ga_no_momentum", "modern_heterogeneous", "bases_muon"):
    assert f"  {name}: " in presets
  assert "measured 2287 s" in presets and "21 simulations, 21 runs × 3 seeds" in presets
  assert "  epochs = 8  — passes over the training set" in out
  assert "  timing = {'name': 'homogeneous'}" in out
  for name in ("constant", "gamma", "heterogeneous", "homogeneous", "trace"):
    assert f"\n  {name}:\n" in out  # every timing model, with its arguments below
  assert "    worker_speed_shape: " in out and "    batch_times: " in out
  assert "\n  execution: " in out and "\n  replica_execution: " in out  # the Simulator's
  assert "  ga: beta, eps, penalty" in out
  gpu = subprocess.run([sys.executable, "-m", "experiments.cifar10", "--help"],
                       capture_output=True, text=True, cwd=ROOT, check=True).stdout
  assert "GPU, not measured" in gpu and "  asgd_grid: " in gpu


def test_values_parse_as_the_fields_types():
  args = cli.parse("digits", ["--config.num_workers=4,8", "--config.algorithms=ga,dana_ga",
                              "--config.seeds=(3, 4)", "--config.simulator.block_size=4",
                              "--config.simulator.block_size=",
                              "--config.timing.worker_speed_shape=2",
                              "--config.save_final_params=false", "--config.baseline=",
                              "--config.hidden=", "--config.learning_rate=1",
                              "--config.options_by_algorithm.msync.num_gradients=0.9*N",
                              "--config.algorithm_options.penalty", "max",
                              "--config=experiments/configs/digits.py:modern",
                              "--workdir", "somewhere", "--verbosity=1"])
  c = args.config
  assert c.num_workers == (4, 8) and c.algorithms == ("ga", "dana_ga") and c.seeds == (3, 4)
  assert c.simulator.block_size is None and c.timing.worker_speed_shape == 2.0
  assert c.save_final_params is False and c.baseline == "" and c.hidden == ()
  assert c.learning_rate == 1.0 and isinstance(c.learning_rate, float)
  assert c.options_by_algorithm.msync.num_gradients == "0.9*N"
  assert c.options_by_algorithm.ringmaster.max_delay == "1*N"  # the preset's, kept
  assert dict(c.algorithm_options) == {"penalty": "max"}
  assert args.preset == "modern" and args.workdir == pathlib.Path("somewhere")
  assert args.verbosity == 1
  assert cli.parse("digits", ["--help"]) is None
  # An option may change type from the preset's ("1*N" to 8); a shell-quoted string is the
  # string; a file that is not a config is one error line.
  modern = cli.parse("digits", ["--config=experiments/configs/digits.py:modern",
                                "--config.options_by_algorithm.ringmaster.max_delay=8",
                                "--config.timing='heterogeneous'"]).config
  assert modern.options_by_algorithm.ringmaster.max_delay == 8
  assert modern.timing.name == "heterogeneous"
  for spec, says in [("experiments/configs/common.py", "defines no get_config()"),
                     ("README.md", "no such .py file"),
                     ("experiments/configs/digits.py:nope", "preset 'nope' does not exist")]:
    with pytest.raises(cli.UsageError, match=says):
      cli.parse("digits", [f"--config={spec}", "--help"])


def test_a_full_disk_is_named_before_anything_is_written(tmp_path, monkeypatch):
  monkeypatch.setattr(preflight, "MIN_FREE_BYTES", 2**62)
  with pytest.raises(validate.ConfigError, match=r"--workdir=.* the disk is full"):
    preflight.check_workdir(tmp_path / "runs")
  assert not (tmp_path / "runs").exists()


def test_a_run_prints_a_line_per_run_and_where_the_results_are(tmp_path):
  first = run("--config.baseline=sgd", workdir=tmp_path / "w")
  assert first.returncode == 0, first.stderr[-2000:]
  lines = first.stdout.strip().splitlines()
  assert lines[0].startswith("[1/2] sgd_N1: finished in ")
  assert lines[1].startswith("[2/2] ga_N2: finished in ") and "final test error" in lines[1]
  assert lines[-1].startswith(f"results: {tmp_path / 'w' / 'results.md'}")
  assert len(lines) == 3 and len(first.stderr) < 2000  # one bar per run, no logging
  again = run("--config.baseline=sgd", workdir=tmp_path / "w")
  assert again.stdout.splitlines()[:2] == ["[1/2] sgd_N1: skipped: finished",
                                            "[2/2] ga_N2: skipped: finished"]
  # Every run's metrics rows have the same keys (NaN where one does not apply).
  keys = {tuple(sorted(json.loads(line))) for run_dir in ("sgd_N1", "ga_N2")
          for line in (tmp_path / "w" / run_dir / "metrics.jsonl").read_text().splitlines()}
  assert len(keys) == 1


MODEL = '''
import flax.linen as nn


class Net(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, train=False):
    x = x.reshape((x.shape[0], -1))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(nn.Dense(16)(x))
    x = nn.Dropout(0.3, deterministic=not train)(nn.relu(x))
    return nn.Dense(self.num_classes)(x)


def make(num_classes):
  return Net(num_classes)
'''


@pytest.mark.slow
def test_a_users_model_runs_through_the_sweep_with_tensorboard(tmp_path, monkeypatch):
  (tmp_path / "mymodels.py").write_text(MODEL)
  monkeypatch.syspath_prepend(str(tmp_path))
  config = digits.get_config()
  config.update(dict(model="mymodels:make", algorithms=("ga", "ssgd"), num_workers=(2,),
                     seeds=(0, 1), epochs=2, tensorboard=True))
  summaries = train.run_sweep(config, tmp_path / "runs")
  assert [s["algorithm"] for s in summaries] == ["sgd", "ga", "ssgd"]
  assert all(np.all(np.isfinite(s["final_test_error"])) for s in summaries)
  assert all(max(s["final_test_error"]) < 0.5 for s in summaries)  # it learned
  keys = {tuple(sorted(json.loads(line))) for run_dir in ("sgd_N1", "ga_N2", "ssgd_N2")
          for line in (tmp_path / "runs" / run_dir / "metrics.jsonl").read_text().splitlines()}
  assert len(keys) == 1  # SSGD's rows too: NaN for the gap and penalty it has not
  # (Dropout's keys per seed and dispatch: tests/models/test_models.py.)
  events = sorted((tmp_path / "runs" / "ga_N2" / "tensorboard").glob("seed_*/events.*"))
  assert [e.parent.name for e in events] == ["seed_0", "seed_1"]
  scalars = _scalars(events[0])
  rows = [json.loads(line) for line in
          (tmp_path / "runs" / "ga_N2" / "metrics.jsonl").read_text().splitlines()]
  seed0 = [r for r in rows if r["seed"] == 0]
  assert [v for s, v in scalars["test/error"]] == pytest.approx([r["test/error"] for r in seed0])
  assert [s for s, v in scalars["test/error"]] == [r["step"] for r in seed0]
  plot.main(tmp_path / "runs", quiet=True)
  assert (tmp_path / "runs" / "test_error_vs_time.png").exists()
  wrong = digits.get_config()
  wrong.update(dict(model="mymodels:nothing"))
  with pytest.raises(validate.ConfigError, match="has no callable 'nothing'"):
    train.run_sweep(wrong, tmp_path / "never")
  assert not (tmp_path / "never").exists()


def test_schedule_in_epochs_needs_no_steps_per_epoch():
  import dana_jax as dj
  from dana_jax import data, models
  x, y, _, _ = data.digits()
  model = dj.flax_model(models.MLP((8,)), (8, 8))
  sim = dj.Simulator(model, "ssgd", x, y, num_workers=4, batch_size=32,
                     learning_rate_schedule=dj.paper_in_epochs(
                         num_workers=4, warmup_epochs=2.0, decay_epochs=(3.0,)))
  per_epoch = (len(y) // 32) / 4  # SSGD: rounds of 4 gradients (docs/spec.md §2.9)
  assert sim.spec.steps_per_epoch == per_epoch
  lr = sim.parts.learning_rate({"learning_rate": 0.1})
  for step in (0, 5, 17, 23, 40):
    epoch = step / per_epoch
    want = (0.025 + 0.075 * min(epoch / 2.0, 1.0)) * (0.1 if epoch >= 3.0 else 1.0)
    np.testing.assert_allclose(float(lr(step)), want, rtol=1e-6)


def _scalars(path) -> dict:
  """{tag: [(step, value)]} of a TensorBoard event file (TFRecord framing: length,
  its CRC, the Event proto, its CRC), read with tensorboardX's own protos."""
  import struct

  from tensorboardX.proto import event_pb2
  out, data, at = {}, pathlib.Path(path).read_bytes(), 0
  while at < len(data):
    (length,) = struct.unpack("<Q", data[at:at + 8])
    event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
    at += 12 + length + 4
    for value in event.summary.value:
      out.setdefault(value.tag, []).append((event.step, value.simple_value))
  return out
