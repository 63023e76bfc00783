"""A table of user mistakes through every entry point: each is one line, no traceback, and
nothing written.

The entry points: every experiment's command line (``experiments.main.run``, the code
behind ``python -m experiments.<name>``), ``experiments.speedup`` (the same command line),
``experiments.plot``'s, and the public API (``dj.ConfigError``, a ``ValueError``). Every
case runs in process and is caught before any training starts; a mistake's line starts
``error:`` and names the flag or field, and a work directory it names is not created.
The last tests check the other side: a genuine bug keeps its traceback.
"""

import errno
import os
import pathlib

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import models
from dana_jax import schedule as S
from experiments import input_pipeline, main, plot, sweep

# A tiny sweep the mistakes are made on (later flags override earlier ones).
TINY = ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
        "--config.epochs=1", "--config.baseline="]
# Placeholders: {tmp} the test's directory, holding the files _make_files writes.
FASHION = "--config=experiments/configs/fashion_mnist.py"

# (experiment, flags, what the one error line must contain)
EXPERIMENT_MISTAKES = [
    # field names and flags
    ("digits", ["--config.epohcs=3"], ["config.epohcs", "did you mean config.epochs?"]),
    ("digits", ["--epochs=3"], ["--epochs", "did you mean --config.epochs?"]),
    ("digits", ["--config.epochs.x=1"], ["config.epochs.x", "not a field"]),
    ("digits", ["--config..epochs=1"], ["config..epochs", "not a field"]),
    ("digits", ["--nosuch=1"], ["--nosuch", "--workdir"]),
    ("digits", ["extra"], ["'extra'", "--FLAG=VALUE"]),
    ("digits", ["-x=3"], ["'-x=3'", "two dashes"]),
    ("digits", ["--"], ["'--'", "not a flag"]),
    ("digits", ["--config.epochs"], ["--config.epochs needs a value"]),
    ("digits", ["--verbosity=9"], ["--verbosity='9'", "0 (warnings"]),
    ("digits", ["--verbosity="], ["--verbosity=''", "2 (debug)"]),
    ("digits", ["--config.mesh=3"], ["config.mesh", "config.mesh.workers"]),
    ("digits", ["--config.algorithm_options=3"], ["config.algorithm_options",
                                                  "--config.algorithm_options.NAME=VALUE"]),
    ("digits", ["--config.options_by_algorithm.ga=3"], ["config.options_by_algorithm.ga",
                                                        "ALGORITHM.NAME"]),
    ("digits", ["--config.verbosity=1"], ["config.verbosity", "not a field"]),
    # garbled values, one of each field type
    ("digits", ["--config.epochs=abc"], ["config.epochs='abc'", "need an integer"]),
    ("digits", ["--config.epochs=1.5"], ["config.epochs='1.5'", "need an integer"]),
    ("digits", ["--config.epochs=1e9"], ["config.epochs='1e9'", "need an integer"]),
    ("digits", ["--config.epochs=True"], ["config.epochs='True'", "need an integer"]),
    ("digits", ["--config.epochs=0"], ["config.epochs=0", "≥ 1"]),
    ("digits", ["--config.batch_size=1.5"], ["config.batch_size", "integer"]),
    ("digits", ["--config.batch_size=100000"], ["config.batch_size: batch_size=100000", "1497"]),
    ("digits", ["--config.learning_rate=abc"], ["config.learning_rate='abc'", "a number"]),
    ("digits", ["--config.learning_rate=nan"], ["config.learning_rate", "finite"]),
    ("digits", ["--config.learning_rate=1e400"], ["config.learning_rate", "finite"]),
    ("digits", ["--config.momentum="], ["config.momentum=''", "a number"]),
    ("digits", ["--config.momentum=2"], ["config.momentum", "(−1, 1)"]),
    ("digits", ["--config.weight_decay=-1"], ["config.weight_decay", "≥ 0"]),
    ("digits", ["--config.save_final_params=maybe"], ["config.save_final_params='maybe'",
                                                      "true or false"]),
    ("digits", ["--config.tensorboard=2"], ["config.tensorboard='2'", "true or false"]),
    ("digits", ["--config.simulator.block_size=abc"], ["config.simulator: block_size='abc'",
                                                        "an integer"]),
    ("digits", ["--config.timing.shape=abc"], ["config.timing: timing.shape='abc'", "a positive"]),
    ("digits", ["--config.timing.shape=-1"], ["config.timing: timing.shape=-1", "positive"]),
    ("digits", ["--config.timing.worker_speed_shape=nan"],
     ["config.timing: timing.worker_speed_shape='nan'", "positive"]),
    # the fields of the earlier layout: each names its new path
    ("digits", ["--config.timing_shape=2"], ["config.timing_shape is gone",
                                            "use --config.timing.shape"]),
    ("digits", ["--config.worker_speed_shape=2"], ["config.worker_speed_shape is gone",
                                                  "use --config.timing.worker_speed_shape"]),
    ("digits", ["--config.timing_trace=x.npy"], ["config.timing_trace is gone",
                                                "use --config.timing.batch_times"]),
    ("digits", ["--config.execution=blocks"], ["config.execution is gone",
                                              "use --config.simulator.execution"]),
    ("digits", ["--config.block_size=4"], ["config.block_size is gone",
                                          "use --config.simulator.block_size"]),
    ("digits", ["--config.replica_execution=vmap"], ["config.replica_execution is gone",
                                                    "use --config.simulator.replica_execution"]),
    ("digits", ["--config.simulator.nosuch=1"], ["config.simulator.nosuch",
                                                "keyword arguments of dana_jax.Simulator"]),
    ("digits", ["--config.simulator.execution.x=1"], ["config.simulator.execution.x",
                                                     "one option per flag"]),
    ("digits", ["--config.seeds=a,b"], ["config.seeds", "integers ≥ 0"]),
    ("digits", ["--config.seeds=0,0"], ["config.seeds", "distinct"]),
    ("digits", ["--config.seeds=-1"], ["config.seeds", "integers ≥ 0"]),
    ("digits", ["--config.seeds=99999999999999999999"], ["config.seeds", "< 2^63"]),
    ("digits", ["--config.seeds=[1,2"], ["config.seeds", "integers"]),
    ("digits", ["--config.seeds=" + "(" * 5000 + "0" + ")" * 5000], ["config.seeds",
                                                                     "integers"]),
    ("digits", ["--config.epochs=" + "9" * 5000], ["config.epochs=", "need an integer"]),
    ("digits", ["--config.num_workers=a"], ["config.num_workers", "integers"]),
    ("digits", ["--config.num_workers=0"], ["config.num_workers: num_workers=0", "≥ 1"]),
    ("digits", ["--config.num_workers=True"], ["config.num_workers", "integers"]),
    ("digits", ["--config.num_workers=100000000"],
     ["config.num_workers: num_workers=100000000", "GiB"]),
    ("digits", ["--config.hidden=0"], ["config.hidden", "≥ 1"]),
    ("digits", ["--config.decay_epochs=5,3"], ["config.decay_epochs", "increasing"]),
    ("digits", ["--config.warmup_epochs=nan"], ["config.warmup_epochs", "≥ 0"]),
    ("digits", ["--config.chunk_steps=0"], ["config.chunk_steps=0", "≥ 1"]),
    ("digits", ["--config.eval_every_epochs=0"], ["config.eval_every_epochs", "> 0"]),
    ("digits", ["--config.checkpoint_every_epochs=-1"], ["config.checkpoint_every_epochs",
                                                         "0 for no checkpoints"]),
    ("digits", ["--config.host_devices=-1"], ["config.host_devices=-1", "≥ 0"]),
    ("digits", ["--config.host_devices=abc"], ["config.host_devices='abc'", "an integer"]),
    ("digits", ["--config.host_devices=100000"], ["config.host_devices=100000", "at most"]),
    ("digits", ["--config.algorithms=ga,ga"], ["config.algorithms=('ga', 'ga')", "once"]),
    ("digits", ["--config.num_workers=2,2"], ["config.num_workers=(2, 2)", "once"]),
    ("digits", ["--config.algorithms=(1,[2])"], ["config.algorithms='(1,[2])'",
                                                 "a tuple of numbers or names"]),
    ("digits", ["--config.mesh.replicas=0"], ["config.mesh: mesh.replicas=0", "≥ 1"]),
    ("digits", ["--config.mesh.workers=3"], ["config.mesh: mesh.workers=3",
                                             "execution='blocks'"]),
    ("digits", ["--config.simulator.execution=blocks", "--config.mesh.workers=64"],
     ["config.mesh", "64 devices"]),
    # names from a registry
    ("digits", ["--config.algorithms="], ["config.algorithms=()", "non-empty"]),
    ("digits", ["--config.algorithms=nosuch"], ["config.algorithms", "'dana_ga'"]),
    ("digits", ["--config.baseline=nosuch"], ["config.baseline", "'sgd'"]),
    ("digits", ["--config.dataset=mnist"], ["config.dataset='mnist'", "'fashion_mnist'"]),
    ("digits", ["--config.model="], ["config.model=''", "package.module:factory"]),
    ("digits", ["--config.model=nosuchpkg.mod:make"], ["config.model", "cannot import"]),
    ("digits", ["--config.model=os:path"], ["config.model", "no callable 'path'"]),
    ("digits", ["--config.timing=poisson"], ["config.timing", "'heterogeneous'"]),
    ("digits", ["--config.timing.name=poisson"], ["config.timing", "'heterogeneous'"]),
    ("digits", ["--config.timing="], ["config.timing", "'homogeneous'"]),
    ("digits", ["--config.simulator.execution=fast"], ["config.simulator", "'blocks'"]),
    ("digits", ["--config.simulator.replica_execution=pmap"], ["config.simulator", "'loop'"]),
    ("digits", ["--config.timing=trace"], ["config.timing", "'batch_times'"]),
    ("digits", ["--config.timing=trace", "--config.timing.batch_times="],
     ["config.timing: timing.batch_times.ndim=0", "2-D array"]),
    ("digits", ["--config.timing=trace", "--config.timing.batch_times={tmp}/a_dir"],
     ["config.timing: timing.batch_times=", ".npy file"]),
    ("digits", ["--config.timing=trace", "--config.timing.batch_times={tmp}/a_file"],
     ["config.timing: timing.batch_times=", "not a readable .npy array"]),
    # a timing argument the chosen timing does not take
    ("digits", ["--config.timing.batch_times={tmp}/a_file"],
     ["config.timing: timing.batch_times is not allowed with timing 'homogeneous'"]),
    ("digits", ["--config.timing=trace", "--config.timing.batch_times={tmp}/a_file",
                "--config.timing.shape=3"], ["config.timing: timing.shape",
                                             "with timing 'trace'"]),
    # algorithm options
    ("digits", ["--config.algorithm_options.penalty=nosuch"], ["penalty='nosuch'",
                                                               "options_by_algorithm"]),
    ("digits", ["--config.algorithm_options.base=nosuch"],
     ["config.algorithm_options: algorithm_options.base", "'adam'"]),
    ("digits", ["--config.algorithm_options.a.b=3"], ["config.algorithm_options.a.b",
                                                      "one option per flag"]),
    ("digits", ["--config.baseline=sgd", "--config.algorithm_options.penalty=max"],
     ["config.algorithm_options", "options_by_algorithm"]),
    ("digits", ["--config.options_by_algorithm.nosuch.x=3"],
     ["config.options_by_algorithm.nosuch", "not an algorithm"]),
    ("digits", ["--config.options_by_algorithm.ga.nosuch=1"],
     ["config.options_by_algorithm.ga", "'penalty'"]),
    ("digits", ["--config.options_by_algorithm.ga.penalty={{}}"],
     ["config.options_by_algorithm.ga.penalty='{{}}'", "a number, true or false"]),
    ("digits", ["--config.options_by_algorithm.ga.learning_rate=abc"],
     ["config.options_by_algorithm.ga.learning_rate='abc'", "need a number"]),
    ("digits", ["--config.options_by_algorithm.ga.learning_rate=true"],
     ["config.options_by_algorithm.ga.learning_rate='true'", "need a number"]),
    ("digits", ["--config.options_by_algorithm.ga.momentum=5"],
     ["config.options_by_algorithm.ga", "(−1, 1)"]),
    # options of an algorithm the sweep leaves out are checked too (a typo is no less one)
    ("digits", ["--config.options_by_algorithm.sa.beta=0.5"],
     ["config.options_by_algorithm.sa", "'sa' takes ['base']"]),
    ("digits", ["--config.options_by_algorithm.dana_ga.beta=2"],
     ["config.options_by_algorithm.dana_ga", "beta=2", "[0, 1)"]),
    ("digits", ["--config.options_by_algorithm.dana_ga.learning_rate=-1"],
     ["config.options_by_algorithm.dana_ga", "learning_rate=-1"]),
    ("digits", ["--config.options_by_algorithm.msync.num_gradients=0"],
     ["config.options_by_algorithm.msync", "num_gradients"]),
    ("digits", ["--config.algorithms=msync", "--config.options_by_algorithm.msync."
                "num_gradients=x*N"], ["config.options_by_algorithm.msync.num_gradients",
                                       "<a>*N"]),
    # processes
    ("digits", ["--config.distributed.initialize=True"],
     ["config.distributed.initialize=True", "no cluster was detected"]),
    ("digits", ["--config.distributed.initialize=True",
                "--config.distributed.coordinator_address=nohost"],
     ["config.distributed.coordinator_address='nohost'", "HOST:PORT"]),
    ("digits", ["--config.distributed.initialize=True",
                "--config.distributed.coordinator_address=:"],
     ["config.distributed.coordinator_address=':'", "1 … 65535"]),
    ("digits", ["--config.distributed.initialize=True",
                "--config.distributed.coordinator_address=localhost:99999"],
     ["config.distributed.coordinator_address='localhost:99999'", "1 … 65535"]),
    ("digits", ["--config.distributed.initialize=True",
                "--config.distributed.coordinator_address=localhost:1234"],
     ["config.distributed.num_processes=0", "process_id"]),
    ("digits", ["--config.distributed.initialize=True",
                "--config.distributed.coordinator_address=nosuch.invalid:1234",
                "--config.distributed.num_processes=2", "--config.distributed.process_id=1"],
     ["config.distributed.coordinator_address='nosuch.invalid:1234'", "does not resolve"]),
    ("digits", ["--config.distributed.initialize=True", "--config.distributed.num_processes=2",
                "--config.distributed.process_id=5"],
     ["config.distributed.process_id=5", "< num_processes"]),
    # the work directory
    ("digits", ["--workdir="], ["--workdir=''", "give a directory"]),
    ("digits", ["--workdir=   "], ["--workdir='   '", "give a directory"]),
    ("digits", ["--workdir"], ["--workdir needs a value"]),
    ("digits", ["--workdir={tmp}/a_file"], ["--workdir=", "is a file"]),
    ("digits", ["--workdir={tmp}/a_file/runs"], ["--workdir=", "is under a file"]),
    ("digits", ["--workdir={tmp}/loop"], ["--workdir=", "symbolic link loop"]),
    ("digits", ["--workdir={tmp}/loop/runs"], ["--workdir=", "(above it) is a symbolic link loop"]),
    ("digits", ["--workdir={tmp}/dangling"], ["--workdir=", "symbolic link to nothing"]),
    ("digits", ["--workdir={tmp}/" + "x" * 300], ["--workdir=", "255 bytes"]),
    ("digits", ["--workdir=~nosuchuser_dana_jax/runs"], ["--workdir='~nosuchuser_dana_jax/runs'",
                                                         "cannot expand '~'"]),
    ("digits", ["--workdir=/proc/dana_jax_test/runs"], ["--workdir", "not writable"]),
    # the config file
    ("digits", ["--config=nosuch.py"], ["--config='nosuch.py'", "no such .py file"]),
    ("digits", ["--config={tmp}/a_dir.py"], ["a_dir.py", "no such .py file"]),
    ("digits", ["--config=README.md"], ["--config='README.md'", "no such .py file"]),
    ("digits", ["--config=experiments/configs/digits.py:nosuch"], ["preset 'nosuch'",
                                                                  "'modern'"]),
    ("digits", ["--config=experiments/configs/common.py"], ["common.py",
                                                           "defines no get_config()"]),
    ("digits", ["--config={tmp}/syntax.py"], ["syntax.py", "importing it failed (SyntaxError"]),
    ("digits", ["--config={tmp}/binary.py"], ["binary.py", "importing it failed"]),
    ("digits", ["--config={tmp}/raises.py"], ["raises.py", "get_config() failed (KeyError"]),
    ("digits", ["--config={tmp}/none.py"], ["none.py", "returned a NoneType"]),
    ("digits", ["--config={tmp}/plain_dict.py"], ["plain_dict.py", "returned a dict"]),
    ("digits", ["--config={tmp}/bad_presets.py:x"], ["bad_presets.py", "PRESETS is a int"]),
    ("digits", ["--config={tmp}/no_presets.py:x"], ["no_presets.py", "has no presets"]),
    # text the shell hands over
    ("digits", ["--config.timing=\udcff\udcfe"], ["--config.timing=", "valid UTF-8"]),
    ("digits", ["--workdir={tmp}/\udcff"], ["--workdir=", "valid UTF-8"]),
    ("digits", ["--config.timing=a\0b"], ["--config.timing=", "NUL character"]),
    # the other experiments
    ("fashion_mnist", ["--config.idx_dir={tmp}/nosuch"], ["config.idx_dir", "does not exist"]),
    ("fashion_mnist", [f"{FASHION}:nosuch"], ["preset 'nosuch'", "'main'"]),
    ("cifar10", ["--config.depth=21"], ["config.depth=21", "6n + 2"]),
    ("cifar10", ["--config.data_dir={tmp}/nosuch"], ["config.data_dir", "does not exist"]),
    ("cifar100", ["--config.epochs=-1"], ["config.epochs=-1", "≥ 1"]),
    ("imagenet", ["--config.image_size=0"], ["config.image_size=0", "≥ 1"]),
    ("wikitext103", ["--config.window=0"], ["config.window=0", "≥ 1"]),
    # the speedup model: the same command line
    ("speedup", ["--runs=0"], ["--runs", "did you mean --config.runs?"]),
    ("speedup", ["--workers=0"], ["--workers", "did you mean --config.num_workers?"]),
    ("speedup", ["--iterations", "4000"], ["--iterations", "did you mean --config.iterations?"]),
    ("speedup", ["--config.runs=0"], ["config.runs=0", "≥ 1"]),
    ("speedup", ["--config.runs=-1"], ["config.runs=-1", "≥ 1"]),
    ("speedup", ["--config.runs=abc"], ["config.runs='abc'", "an integer"]),
    ("speedup", ["--config.iterations=0"], ["config.iterations=0", "≥ 1"]),
    ("speedup", ["--config.iterations=2.5"], ["config.iterations='2.5'", "an integer"]),
    ("speedup", ["--config.num_workers=0"], ["config.num_workers=(0,)", "≥ 1"]),
    ("speedup", ["--config.num_workers="], ["config.num_workers=()", "non-empty"]),
    ("speedup", ["--config.num_workers=1,1"], ["config.num_workers=(1, 1)", "each N once"]),
    ("speedup", ["--config.num_workers=a"], ["config.num_workers=('a',)", "integers"]),
    ("speedup", ["--config.iterations=1000000000"], ["config.iterations=1000000000", "GiB"]),
    ("speedup", ["--config.num_workers=1000000000"], ["config.num_workers=(1000000000,)",
                                                       "GiB"]),
    ("speedup", ["--config.epochs=3"], ["config.epochs", "not a field"]),
    ("speedup", ["--config=experiments/configs/speedup.py:fast"], ["has no presets"]),
    ("speedup", ["--workdir={tmp}/a_file"], ["--workdir=", "is a file"]),
    ("speedup", ["--workdir={tmp}/loop"], ["--workdir=", "symbolic link loop"]),
    ("speedup", ["--verbosity=3"], ["--verbosity='3'", "0 (warnings"]),
]

PLOT_MISTAKES = [
    ([], ["RESULTS_DIR"]),
    (["{tmp}/a_dir"], ["RESULTS_DIR=", "holds no finished runs"]),
    (["{tmp}/nosuch"], ["RESULTS_DIR=", "holds no finished runs"]),
    (["{tmp}/a_file"], ["RESULTS_DIR=", "is a file"]),
    (["{tmp}/loop"], ["RESULTS_DIR=", "symbolic link loop"]),
    ([""], ["RESULTS_DIR=''", "give the --workdir"]),
    (["{tmp}/\udcff"], ["RESULTS_DIR=", "valid UTF-8"]),
    (["{tmp}/sweep", "--target-points=abc"], ["--target-points", "'abc'", "[0, 100]"]),
    (["{tmp}/sweep", "--target-points=200"], ["--target-points", "'200'"]),
    (["{tmp}/sweep", "--target-error=nan"], ["--target-error", "'nan'"]),
    (["{tmp}/sweep", "--target-points=1", "--target-error=3"], ["--target-error",
                                                                "not allowed with"]),
    (["{tmp}/sweep", "--beside={tmp}/a_dir"], ["--beside=", "holds no finished runs"]),
    (["{tmp}/sweep", "--beside={tmp}/nosuch"], ["--beside=", "holds no finished runs"]),
    (["{tmp}/sweep", "extra"], ["unrecognized arguments: extra"]),
    (["{tmp}/sweep", "--nosuch"], ["unrecognized arguments: --nosuch"]),
    (["{tmp}/sweep", "--workdir={tmp}/sweep"], ["RESULTS_DIR or --workdir"]),
    (["--workdir={tmp}/a_dir"], ["RESULTS_DIR=", "holds no finished runs"]),
]

X = np.zeros((64, 8, 8), np.float32)
Y = np.zeros(64, np.int32)
MODEL = dj.flax_model(models.MLP((4,)), (8, 8))


def _simulator(**kwargs):
  return dj.Simulator(MODEL, kwargs.pop("algorithm", "nag"), X, Y,
                      **{"num_workers": 2, "batch_size": 8, **kwargs})


# (what the call does, the call, what the message must name)
API_MISTAKES = [
    ("N = 0", lambda: _simulator(num_workers=0), "num_workers=0"),
    ("N not an integer", lambda: _simulator(num_workers=2.5), "num_workers=2.5"),
    ("batch of 0", lambda: _simulator(batch_size=0), "batch_size=0"),
    ("batch above the data", lambda: _simulator(batch_size=65), "batch_size=65"),
    ("unknown execution", lambda: _simulator(execution="warp"), "execution='warp'"),
    ("block of 0", lambda: _simulator(execution="blocks", block_size=0), "block_size=0"),
    ("unknown replica execution", lambda: _simulator(replica_execution="pmap"),
     "replica_execution='pmap'"),
    ("no seeds", lambda: _simulator(seeds=[]), "seeds=[]"),
    ("timing seeds of another length", lambda: _simulator(seeds=[0, 1], timing_seeds=[0]),
     "timing_seeds=[0]"),
    ("unknown algorithm", lambda: _simulator(algorithm="adamw"), "algorithm='adamw'"),
    ("zero learning rate", lambda: _simulator(hyperparams=dj.Hyperparams(learning_rate=0.0)),
     "hyperparams.learning_rate=0.0"),
    ("momentum 1", lambda: _simulator(hyperparams=dj.Hyperparams(momentum=1.0)),
     "hyperparams.momentum=1.0"),
    ("negative weight decay", lambda: _simulator(hyperparams=dj.Hyperparams(
        weight_decay=-1.0)), "hyperparams.weight_decay=-1.0"),
    ("learning rates of another length", lambda: _simulator(
        seeds=[0, 1], hyperparams=dj.Hyperparams(learning_rate=[0.1, 0.2, 0.3])),
     "hyperparams.learning_rate"),
    ("gamma shape 0", lambda: _simulator(timing=dj.GammaTiming(shape=0.0)), "timing.shape"),
    ("negative gamma scale", lambda: _simulator(timing=dj.GammaTiming(scale=-1.0)),
     "timing.scale"),
    ("constant time 0", lambda: _simulator(timing=dj.ConstantTiming(batch_time=0.0)),
     "timing.batch_time"),
    ("trace of other workers", lambda: _simulator(timing=dj.TraceTiming(np.ones((3, 10)))),
     "timing.batch_times.shape[0]"),
    ("option the algorithm lacks", lambda: _simulator(algorithm_options={"penalty": "max"}),
     "algorithm_options"),
    ("misspelt option", lambda: dj.optimizer("ga", penalti="max"), "penalti"),
    ("unknown option value", lambda: dj.optimizer("ga", penalty="square"), "penalty='square'"),
    ("unknown algorithm by name", lambda: dj.get_algorithm("nosuch"), "algorithm='nosuch'"),
    ("speedup of 0 runs", lambda: S.estimate_speedup(dj.homogeneous(), [1], num_runs=0),
     "num_runs=0"),
    ("speedup of 0 iterations", lambda: S.estimate_speedup(dj.homogeneous(), [1],
                                                           num_iterations=0),
     "num_iterations=0"),
    ("speedup at N = 0", lambda: S.estimate_speedup(dj.homogeneous(), [1, 0], num_runs=1,
                                                    num_iterations=10), "num_workers=[1, 0]"),
    ("speedup at N named", lambda: S.estimate_speedup(dj.homogeneous(), ["a"], num_runs=1,
                                                      num_iterations=10), "num_workers=['a']"),
    ("N given as text", lambda: _simulator(num_workers="4"), "num_workers='4'"),
    ("labels of another length", lambda: dj.Simulator(MODEL, "nag", X, Y[:10], num_workers=2,
                                                      batch_size=8), "train_labels=(10,)"),
    ("unknown base", lambda: dj.optimizer("ga", base="nosuch"), "algorithm_options.base"),
    ("timing by a name", lambda: _simulator(timing="poisson"), "timing="),
    ("mesh of no devices", lambda: dj.make_mesh(replicas=0), "mesh.replicas=0"),
    ("mesh not a mesh", lambda: _simulator(mesh="x"), "mesh='x'"),
    ("a 1-D trace", lambda: _simulator(timing=dj.TraceTiming(np.ones(10))),
     "timing.batch_times.ndim=1"),
]


def _make_files(tmp: pathlib.Path) -> None:
  """The files and links the mistakes name."""
  (tmp / "a_file").write_text("not an array\n")
  (tmp / "a_dir").mkdir()
  (tmp / "a_dir.py").mkdir()
  (tmp / "loop").symlink_to(tmp / "loop_b")
  (tmp / "loop_b").symlink_to(tmp / "loop")
  (tmp / "dangling").symlink_to(tmp / "nowhere")
  (tmp / "syntax.py").write_text("x = (\n")
  (tmp / "binary.py").write_bytes(b"\xff\xfe\x00")
  (tmp / "raises.py").write_text("def get_config():\n  return {}['x']\n")
  (tmp / "none.py").write_text("def get_config():\n  return None\n")
  (tmp / "plain_dict.py").write_text("def get_config():\n  return {'epochs': 1}\n")
  (tmp / "bad_presets.py").write_text(
      "from experiments.configs import digits\nPRESETS = 3\n\n"
      "def get_config(preset=None):\n  return digits.get_config()\n")
  (tmp / "no_presets.py").write_text(
      "from experiments.configs import digits\n\n"
      "def get_config():\n  return digits.get_config()\n")
  run = tmp / "sweep" / "ga_N2"  # a finished sweep, as far as plot's checks look
  run.mkdir(parents=True)
  (run / "summary.json").write_text('{"algorithm": "ga", "num_workers": 2}')


def _tree(root: pathlib.Path) -> set:
  return {(str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*")}


@pytest.fixture
def files(tmp_path, monkeypatch):
  """The mistakes' files; the environment as a run outside a cluster sees it, restored
  afterwards (XLA_FLAGS too: a run sets it for host_devices)."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  for name in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri",
               "KUBERNETES_SERVICE_HOST", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(name, raising=False)
  _make_files(tmp_path)
  return tmp_path


def _one_error_line(code, must) -> str:
  assert isinstance(code, str), code
  assert code.startswith("error: ") and "\n" not in code, code
  assert "Traceback" not in code, code
  for text in must:
    assert text in code, (text, code)
  return code


def _ids(cases):
  return [f"{c[0]}:{' '.join(c[1])[:60]}" for c in cases]


def test_the_table_covers_every_entry_point_with_enough_cases():
  experiments = {name for name, _, _ in EXPERIMENT_MISTAKES}
  assert {"digits", "fashion_mnist", "cifar10", "cifar100", "imagenet", "wikitext103",
          "speedup"} <= experiments
  total = len(EXPERIMENT_MISTAKES) + len(PLOT_MISTAKES) + len(API_MISTAKES)
  assert total >= 80 and len(PLOT_MISTAKES) >= 10 and len(API_MISTAKES) >= 10


@pytest.mark.parametrize("name,flags,must", EXPERIMENT_MISTAKES, ids=_ids(EXPERIMENT_MISTAKES))
def test_an_experiment_mistake_is_one_error_line_and_writes_nothing(name, flags, must, files,
                                                                    capsys):
  workdir = files / "runs"
  flags = [f.format(tmp=files) for f in flags]
  argv = (TINY if name != "speedup" else []) + flags
  if not any(f.startswith("--workdir") for f in flags):
    argv.append(f"--workdir={workdir}")
  before = _tree(files)
  with pytest.raises(SystemExit) as exit_:
    main.run(name, argv)
  _one_error_line(exit_.value.code, [t.format(tmp=files) for t in must])
  out = capsys.readouterr()
  assert "Traceback" not in out.out + out.err
  assert not workdir.exists() and _tree(files) == before  # nothing half-written


@pytest.mark.parametrize("argv,must", PLOT_MISTAKES, ids=[" ".join(a)[:60] or "(none)"
                                                        for a, _ in PLOT_MISTAKES])
def test_a_plot_mistake_is_one_error_line_and_writes_nothing(argv, must, files, capsys):
  before = _tree(files)
  with pytest.raises(SystemExit) as exit_:
    plot.cli([a.format(tmp=files) for a in argv])
  _one_error_line(exit_.value.code, must)
  out = capsys.readouterr()
  assert "Traceback" not in out.out + out.err and "usage:" not in out.err
  assert _tree(files) == before


@pytest.mark.parametrize("what,call,field", API_MISTAKES, ids=[c[0] for c in API_MISTAKES])
def test_an_api_mistake_is_one_config_error_line_naming_the_field(what, call, field):
  with pytest.raises(dj.ConfigError) as error:
    call()
  message = str(error.value)
  assert isinstance(error.value, ValueError)
  assert field in message and "\n" not in message and "is not allowed" in message, message


# The catch-all is honest: the user's mistakes are one line, anything else is a bug and keeps
# its traceback (the exception itself, not SystemExit).

def _sweep_raising(monkeypatch, error):
  def run_sweep(*args, **kwargs):
    raise error
  monkeypatch.setattr(sweep, "run_sweep", run_sweep)


@pytest.mark.parametrize("error,must", [
    (dj.ConfigError("timing.shape=0 is not allowed: need > 0.\n(more)"),
     ["timing.shape=0", "(more)"]),
    (input_pipeline.DataError("cifar10 was not found in /x"), ["cifar10 was not found"]),
    (OSError(errno.ENOSPC, "No space left on device", "/w/x"), ["the disk is full"]),
    (PermissionError(errno.EACCES, "Permission denied", "/w/ga_N2/summary.json"),
     ["cannot write '/w/ga_N2/summary.json'", "Permission denied"]),
    (FileExistsError(errno.EEXIST, "File exists", "/w/ga_N2"),
     ["'/w/ga_N2' is in the way", "another --workdir"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/w/ga_N2/summary.json"),
     ["'/w/ga_N2/summary.json' is in the way"]),
    (KeyboardInterrupt(), ["interrupted", "resumes"]),
])
def test_a_mistake_raised_inside_a_run_is_one_line(error, must, monkeypatch, tmp_path):
  _sweep_raising(monkeypatch, error)
  with pytest.raises(SystemExit) as exit_:
    main.run("digits", TINY + [f"--workdir={tmp_path / 'w'}"])
  _one_error_line(exit_.value.code, must)


@pytest.mark.parametrize("error", [
    KeyError("params"), TypeError("unsupported operand"), ValueError("not a ConfigError"),
    OSError(errno.EIO, "Input/output error"), RuntimeError("XLA failed"),
])
def test_a_bug_inside_a_run_keeps_its_traceback(error, monkeypatch, tmp_path):
  _sweep_raising(monkeypatch, error)
  with pytest.raises(type(error)) as raised:
    main.run("digits", TINY + [f"--workdir={tmp_path / 'w'}"])
  assert raised.value is error


@pytest.mark.parametrize("error,must", [
    (PermissionError(errno.EACCES, "Permission denied", "/r/results.md"),
     ["cannot write '/r/results.md'", "writable"]),
    (OSError(errno.EROFS, "Read-only file system", "/r/results.md"), ["Read-only"]),
])
def test_plot_into_a_directory_it_cannot_write_is_one_line(error, must, files, monkeypatch):
  def draw(*args, **kwargs):
    raise error
  monkeypatch.setattr(plot, "main", draw)
  with pytest.raises(SystemExit) as exit_:
    plot.cli([str(files / "sweep")])
  _one_error_line(exit_.value.code, must)
  monkeypatch.setattr(plot, "main", lambda *a, **k: [][0])  # a bug: its traceback
  with pytest.raises(IndexError):
    plot.cli([str(files / "sweep")])


def test_a_bug_inside_the_speedup_model_keeps_its_traceback(monkeypatch, tmp_path):
  def broken(*args, **kwargs):
    raise ZeroDivisionError("a bug")
  monkeypatch.setattr(S, "estimate_speedup", broken)
  with pytest.raises(ZeroDivisionError):
    main.run("speedup", ["--config.runs=1", "--config.iterations=10",
                         f"--workdir={tmp_path / 'w'}"])
  assert not (tmp_path / "w").exists()  # nothing is written before the numbers exist
