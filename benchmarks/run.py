"""Speed of the engine against the device limit, a naive loop, and PyTorch eager.

    python -m benchmarks.run --model resnet20 --workers 16 [--algorithm nag]
        [--execution auto] [--batch 32] [--block-size K] [--steps 100]
        [--references sync,naive,torch] [--out benchmarks/results/run.jsonl]
    python -m benchmarks.run --scaling [--model mlp] [--workers 1,4,16,64,256]
    python -m benchmarks.run --model mlp --workers 64 --replicas 4 --timing heterogeneous
    python -m benchmarks.run --replica-table --model mlp [--workers 8,64,256] [--steps S]
    XLA_FLAGS=--xla_force_host_platform_device_count=8 \
      python -m benchmarks.run --model cnn --execution blocks --block-size 8 --mesh-workers 8

For one (model, N, algorithm, execution) it measures, after compilation and
on synthetic data of the model's input shape kept on the device:

* ``engine``: the simulation (``Simulator.run_chunk``, one compiled chunk of
  ``--steps`` master steps): master steps/s, examples/s (gradients × B),
  compile time (first call minus a steady call), peak device memory (where
  the backend reports it) and the engine's memory estimate;
* ``sync_loop`` / ``sync_scan``: the device limit — a plain jitted
  synchronous training step of the same model and loss (SGD with momentum)
  at batch B, called from Python / inside ``lax.scan``; and at K·B for
  ``blocks``;
``--mesh-workers W`` splits each block's gradients over W devices
(``dana_jax.make_mesh(workers=W)``; on CPU, host devices from ``XLA_FLAGS``).

* ``naive``: a naive JAX port — a Python loop calling a jitted master step
  once per master step (the engine's step with a chunk of one);
* ``torch``: the way public reference simulators are written — PyTorch eager,
  one model whose weights and per-worker momenta are swapped in and out, one
  gradient per master step (``benchmarks/torch_reference.py``; skipped when
  torch is absent).

Ratios (engine time per gradient over each reference's) are printed and every
measurement is appended as one JSON object, with device, versions and the
command, to ``--out``. ``--scaling`` measures the engine's cost per master
step over N and over model size. ``python -m benchmarks.plot`` draws the
figures of ``docs/benchmarks.md`` from the results file.

``--replicas R`` runs R independent replicas in one compiled chunk
(``seeds=list(range(R))``; R = 1 is the single run without a replica axis,
``seeds=0``) and ``--timing`` picks the timing model (``homogeneous``, the
engine's default, or ``heterogeneous``: ``dj.heterogeneous()``, gamma shape 4).
Every row records ``replicas`` and ``timing``; engine rows add
``seconds_per_step_per_replica`` (time per chunk / steps / R), and their
``seconds_per_gradient`` counts the gradients of all R replicas (reference rows
always train one model). ``--replica-table`` measures, for one model, the
per-replica cost per master step over execution ∈ {steps, blocks} (block size
``--block-size``, default 4), N ∈ ``--workers`` (default 8,64,256), timing ∈
{homogeneous, heterogeneous} and R ∈ ``--replicas`` (default 1,4) (an explicit
``--execution`` or ``--timing`` keeps only that one), and prints
and records the ratio of each R > 1 to R = 1 (``replica_ratio``; target ≤
``REPLICA_TARGET``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import resource
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import dana_jax as dj
from benchmarks.timing import time_calls
from dana_jax import conv as dana_jax_conv
from dana_jax import models

RESULTS = pathlib.Path(__file__).parent / "results" / "run.jsonl"
MODELS = {  # name: (module factory, input shape)
    "digits_mlp": (lambda: models.MLP((64,), 10), (8, 8)),
    "mlp64": (lambda: models.MLP((64,), 10), (28, 28, 1)),
    "mlp": (lambda: models.MLP((256, 256), 10), (28, 28, 1)),
    "mlp1024": (lambda: models.MLP((1024, 1024), 10), (28, 28, 1)),
    "cnn": (lambda: models.SmallCNN(num_classes=10), (28, 28, 1)),
    "resnet20": (lambda: models.CifarResNet(20, 10), (32, 32, 3)),
    "wrn16_4": (lambda: models.WideResNet(16, 4, 10), (32, 32, 3)),
    "resnet50": (lambda: models.ResNet50(1000), (224, 224, 3)),
}
REFERENCES = ("sync", "naive", "torch")
TIMINGS = {"homogeneous": dj.homogeneous, "heterogeneous": dj.heterogeneous}
REPLICA_TARGET = 1.25  # per-replica cost with R replicas over one run's, at most
# Master steps per timed chunk in --replica-table when --steps is not given: the
# whole table (16 configurations, 4 calls each plus compilation) in about 5
# minutes on the 2-core development CPU (estimated from single configurations,
# for the engine after its replica change).
TABLE_STEPS = {"digits_mlp": 600, "mlp64": 600, "mlp": 600, "cnn": 16}
# --replica-table keeps XLA's executables here unless --compile-cache says otherwise:
# the configurations that differ only in timing compile the same programs.
TABLE_CACHE = pathlib.Path(tempfile.gettempdir()) / "dana_jax_bench_cache"


def synthetic(shape, num_examples, num_classes, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num_examples,) + tuple(shape)).astype(np.float32)
  return x, rng.integers(0, num_classes, num_examples).astype(np.int32)


def peak_memory() -> dict:
  """Peak device bytes where the backend reports them; else the host's peak RSS."""
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return {"peak_device_bytes": int(stats["peak_bytes_in_use"])}
  return {"peak_host_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def engine_runner(model, x, y, args, num_workers, naive=False):
  """``(sim, call, steps, rows)``: a Simulator, a ``call()`` that runs ``steps`` master
  steps (one compiled chunk; the naive loop: one chunk per step) and blocks until done,
  and the static scan rows per chunk it passes (None: one per step)."""
  replicas = args.replicas
  sim = dj.Simulator(model, args.algorithm, x, y, num_workers=num_workers,
                     batch_size=args.batch, execution=args.execution,
                     block_size=args.block_size, hyperparams=dj.Hyperparams(0.01, 0.9, 1e-4),
                     timing=None if getattr(args, "environment", None) is not None else
                     getattr(args, "timing_model", None) or TIMINGS[args.timing](),
                     environment=getattr(args, "environment", None),
                     seeds=0 if replicas == 1 else list(range(replicas)),
                     replica_execution=getattr(args, "replica_execution", "auto"),
                     algorithm_options=getattr(args, "algorithm_options", None),
                     mesh=dj.make_mesh(workers=args.mesh_workers) if args.mesh_workers > 1
                     else None)
  steps = max(10, args.steps // 10) if naive else args.steps
  chunk = 1 if naive else steps
  total = (args.repeats + 2) * steps
  plan = dj.engine.plan
  schedules = [] if sim.spec.synchronous else plan.schedules(sim.spec, total, chunk)
  # Static scan rows per chunk: blocks, or events with restarts (None: one per step).
  blocks = (None if sim.spec.synchronous
            else plan.rows_per_chunk(sim.spec, schedules, total, chunk))
  holder = {"state": sim.init(), "start": 0}

  def call():
    out = None
    for _ in range(steps // chunk):
      start = holder["start"]
      holder["state"], out = sim.run_chunk(holder["state"], schedules, start, start + chunk,
                                           blocks)
      holder["start"] += chunk
    jax.block_until_ready(out)

  return sim, call, steps, blocks


def engine_row(sim, steps, blocks, first, seconds) -> dict:
  """The engine's row from a first (compiling) and a steady call's seconds."""
  replicas = 1 if sim.spec.single else sim.spec.num_replicas
  memory = dj.engine.memory.memory_estimate(sim.spec, sim.model)
  gradients = steps * (sim.spec.num_workers if sim.spec.synchronous else 1) * replicas
  per_replica = memory["params"] + memory["worker_stacks"] + memory["optimizer"]
  return {"seconds_per_step": seconds / steps,
          "seconds_per_step_per_replica": seconds / steps / replicas,
          "seconds_per_gradient": seconds / gradients,
          "compile_seconds": max(0.0, first - seconds), "execution": sim.spec.execution,
          "replica_execution": None if sim.spec.single else sim.spec.replica_execution,
          "block_size": sim.spec.block_size, "blocks_per_chunk": blocks,
          "memory_estimate_bytes": per_replica,
          "memory_estimate_total_bytes": per_replica * replicas, **peak_memory()}


def measure_engine(model, x, y, args, num_workers, naive=False):
  """Seconds per master step of the engine (or of the naive per-step loop)."""
  sim, call, steps, blocks = engine_runner(model, x, y, args, num_workers, naive)
  first, seconds = time_calls(call, args.repeats)
  return engine_row(sim, steps, blocks, first, seconds)


def measure_sync(model, x, y, batch, steps, repeats, scan, per_gradient_batch):
  """A plain synchronous training step (same loss; Nesterov SGD with weight decay) at ``batch``.

  ``seconds_per_gradient`` is per ``per_gradient_batch`` examples, so that a
  step at K·B compares with the engine's K gradients of B.
  """
  params, _ = model.init(jax.random.key(0))
  tx = optax.chain(optax.add_decayed_weights(1e-4),
                   optax.sgd(0.01, momentum=0.9, nesterov=True))
  x, y = jnp.asarray(x), jnp.asarray(y)
  order = np.random.default_rng(0).integers(0, x.shape[0] - batch, size=steps)

  def step(carry, start):
    params, opt_state = carry
    xb = jax.lax.dynamic_slice_in_dim(x, start, batch)
    yb = jax.lax.dynamic_slice_in_dim(y, start, batch)
    grads = jax.grad(lambda p: model.loss(p, xb, yb, jax.random.key(0))[0])(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  holder = {"carry": (params, tx.init(params))}
  if scan:
    run = jax.jit(lambda c, o: jax.lax.scan(step, c, o)[0], donate_argnums=(0,))
    starts = jnp.asarray(order)

    def call():
      holder["carry"] = run(holder["carry"], starts)
      jax.block_until_ready(holder["carry"])
  else:
    one = jax.jit(lambda c, s: step(c, s)[0], donate_argnums=(0,))

    def call():
      for s in order:
        holder["carry"] = one(holder["carry"], s)
      jax.block_until_ready(holder["carry"])

  first, seconds = time_calls(call, repeats)
  return {"seconds_per_step": seconds / steps,
          "seconds_per_gradient": seconds / steps * per_gradient_batch / batch,
          "compile_seconds": max(0.0, first - seconds), "batch_size": batch}


def environment(argv) -> dict:
  device = jax.devices()[0]
  env = {"device": device.device_kind, "backend": jax.default_backend(),
         "cpu_count": os.cpu_count(), "python": platform.python_version(),
         "jax": jax.__version__, "numpy": np.__version__, "devices": jax.device_count(),
         "command": "python -m benchmarks.run " + " ".join(argv),
         "date": time.strftime("%Y-%m-%d %H:%M")}
  try:
    import torch
    env["torch"] = torch.__version__
  except ImportError:
    pass
  return env


def setting(args, num_workers, model_name, env):
  """``(model, x, y, base row)`` of one configuration: synthetic data of the model's shape."""
  factory, shape = MODELS[model_name]
  model = dj.flax_model(factory(), shape)
  classes = 1000 if model_name == "resnet50" else 10
  k = num_workers if args.block_size is None else args.block_size
  x, y = synthetic(shape, max(16 * args.batch, 2 * k * args.batch), classes)
  base = {"model": model_name, "params": models.count_params(model.init(jax.random.key(0))[0]),
          "num_workers": num_workers, "algorithm": args.algorithm, "batch_size": args.batch,
          "steps": args.steps, "replicas": args.replicas, "timing": args.timing, **env}
  return model, x, y, base


def run_one(args, num_workers, model_name, env, references=REFERENCES) -> list[dict]:
  model, x, y, base = setting(args, num_workers, model_name, env)
  k = num_workers if args.block_size is None else args.block_size
  rows = [{**base, "what": "engine", **measure_engine(model, x, y, args, num_workers)}]
  engine = rows[0]
  batches = [args.batch] + ([k * args.batch] if engine["execution"] == "blocks" and k > 1
                            else [])
  if "sync" in references:
    for batch in batches:
      steps = max(5, args.steps // (batch // args.batch))
      for scan in (False, True):
        rows.append({**base, "what": "sync_scan" if scan else "sync_loop", "steps": steps,
                     **measure_sync(model, x, y, batch, steps, args.repeats, scan,
                                    args.batch)})
  if "naive" in references:
    rows.append({**base, "what": "naive", "steps": max(10, args.steps // 10),
                 **measure_engine(model, x, y, args, num_workers, naive=True)})
  if "torch" in references:
    try:
      from benchmarks import torch_reference
    except ImportError as e:
      print(f"torch reference skipped: {e}", flush=True)
    else:
      steps = max(10, args.steps // 5)
      rows.append({**base, "what": "torch", "steps": steps,
                   **torch_reference.measure(model_name, num_workers, args.batch, steps,
                                             args.repeats)})
  for row in rows:
    row["steps_per_second"] = 1.0 / row["seconds_per_step"]
    row["examples_per_second"] = args.batch / row["seconds_per_gradient"]
  for row in rows[1:]:
    row["engine_over_this"] = engine["seconds_per_gradient"] / row["seconds_per_gradient"]
  return rows


def report(rows):
  for row in rows:
    ratio = row.get("engine_over_this")
    extra = "" if ratio is None else f"   engine/this = {ratio:.3f}"
    if "seconds_per_step_per_replica" in row and row.get("replicas", 1) > 1:
      extra += (f"   R={row['replicas']}: "
                f"{1e3 * row['seconds_per_step_per_replica']:.3f} ms/step/replica")
    print(f"{row['model']:9s} N={row['num_workers']:<4d} {row['what']:10s} "
          f"B={row.get('batch_size', '')!s:5s} {1e3 * row['seconds_per_gradient']:9.3f} ms/grad "
          f"{row['examples_per_second']:9.0f} ex/s "
          f"{1e3 * row['seconds_per_step']:9.3f} ms/step  compile "
          f"{row.get('compile_seconds', 0):.1f}s{extra}", flush=True)


@contextlib.contextmanager
def compile_cache(path):
  """JAX's persistent compilation cache in ``path`` (every compilation), restored after."""
  if not path:
    yield
    return
  from jax._src import compilation_cache  # private: to reset the cache after use
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  compilation_cache.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
    compilation_cache.reset_cache()


def append(path, rows):
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a") as f:  # after each configuration: a long run keeps what it measured
    for row in rows:
      f.write(json.dumps(row) + "\n")


def replica_table(args, workers, replicas, env):
  """Per-replica cost per master step over execution × N × timing × R; ratios to R = 1.

  Engine only. R = ``replicas[0]`` (1: no replica axis) is measured once per
  configuration, every other R once per replica execution of
  ``--replica-execution`` (vmap, loop). Each such row gets ``replica_ratio`` (its
  per-replica cost over the same configuration's at ``replicas[0]``) and
  ``replica_target_met`` (≤ ``REPLICA_TARGET``). A configuration's columns are
  compiled first, then timed in turn ``--repeats`` times (the median of each
  is its cost): the machine's drift slows every column alike. Rows are appended
  to ``--out`` after each configuration.
  """
  block_size = 4 if args.block_size is None else args.block_size
  executions = ("steps", "blocks") if args.execution == "auto" else (args.execution,)
  timings = tuple(TIMINGS) if args.timing is None else (args.timing,)
  base = replicas[0]
  columns = [(base, None)] + [(r, m) for r in replicas[1:] for m in args.replica_executions]
  table = []
  for execution in executions:
    for n in workers:
      for timing in timings:
        cells = {}
        for r, mode in columns:
          cell = argparse.Namespace(**{**vars(args), "execution": execution, "timing": timing,
                                       "replicas": r, "replica_execution": mode or "auto",
                                       "block_size": min(block_size, n)
                                       if execution == "blocks" else None})
          model, x, y, row = setting(cell, n, args.model, env)
          sim, call, steps, blocks = engine_runner(model, x, y, cell, n)
          began = time.perf_counter()
          call()  # compiles
          cells[r, mode] = (row, sim, call, steps, blocks, time.perf_counter() - began, [])
        for _ in range(args.repeats):  # interleaved: a slower minute slows every column
          for _, _, call, _, _, _, times in cells.values():
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
        costs, new = {}, []
        for (r, mode), (setup, sim, _, steps, blocks, first, times) in cells.items():
          row = {**setup, "what": "engine", **engine_row(sim, steps, blocks, first,
                                                        float(np.median(times)))}
          row["steps_per_second"] = 1.0 / row["seconds_per_step"]
          row["examples_per_second"] = args.batch / row["seconds_per_gradient"]
          row["replica_table"], row["conv"] = True, args.conv
          row["compile_cache"] = args.compile_cache or None
          row["mesh_workers"] = args.mesh_workers
          costs[r, mode] = row["seconds_per_step_per_replica"]
          if (r, mode) != columns[0]:
            row["replica_ratio"] = costs[r, mode] / costs[columns[0]]
            row["replica_target_met"] = row["replica_ratio"] <= REPLICA_TARGET
          new.append(row)
        report(new)
        append(args.out, new)
        table.append((execution, n, timing, row["block_size"], costs))
  print(f"\nreplica table: {args.model}, {args.algorithm}, B={args.batch}, "
        f"{args.steps} master steps per chunk; ms per master step per replica, "
        f"ratio R/R={base} (target <= {REPLICA_TARGET})", flush=True)
  name = lambda r, m: f"R={r}" + (f" {m}" if m else "")
  header = "".join(f"{name(r, m):>11s}" for r, m in columns)
  ratios = "".join(f"{name(r, m) + ' ratio':>15s}" for r, m in columns[1:])
  print(f"{'execution':10s}{'N':>5s}  {'timing':14s}{header}{ratios}", flush=True)
  worst = {}
  for execution, n, timing, k, costs in table:
    what = execution if execution == "steps" else f"blocks K={k}"
    cells = "".join(f"{1e3 * costs[c]:11.3f}" for c in columns)
    marks = ""
    for c in columns[1:]:
      ratio = costs[c] / costs[columns[0]]
      worst[c] = max(worst.get(c, 0.0), ratio)
      marks += f"{ratio:14.2f}{' ' if ratio <= REPLICA_TARGET else '!'}"
    print(f"{what:10s}{n:5d}  {timing:14s}{cells}{marks}", flush=True)
  for c, ratio in worst.items():
    print(f"worst ratio {name(*c)}: {ratio:.2f} "
          f"({'meets' if ratio <= REPLICA_TARGET else 'misses'} the target <= "
          f"{REPLICA_TARGET}; '!' marks a miss)", flush=True)
  return table


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="mlp", choices=sorted(MODELS))
  parser.add_argument("--workers", default=None,
                      help="N (default 16), or a comma list with --scaling and "
                           "--replica-table (default 8,64,256)")
  parser.add_argument("--algorithm", default="nag", choices=sorted(dj.ALGORITHMS))
  parser.add_argument("--execution", default="auto", choices=("auto", "steps", "blocks"),
                      help="--replica-table: auto means both steps and blocks")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--block-size", type=int, default=None,
                      help="K for blocks (default N; 4 in --replica-table)")
  parser.add_argument("--steps", type=int, default=None,
                      help="master steps per timed call (default 100; in --replica-table "
                           f"{TABLE_STEPS} by model, else 100)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--references", default=",".join(REFERENCES))
  parser.add_argument("--replicas", default=None,
                      help="R independent replicas in one chunk (default 1: no replica axis); "
                           "a comma list with --replica-table (default 1,4; the first is the "
                           "baseline of the ratios)")
  parser.add_argument("--replica-execution", default=None,
                      help="how R > 1 replicas share a compiled chunk: auto (the backend's "
                           "choice, dj.default_replica_execution), vmap or loop; a comma list "
                           "with --replica-table (default vmap,loop)")
  parser.add_argument("--timing", default=None, choices=sorted(TIMINGS),
                      help="timing model (default homogeneous; heterogeneous: "
                           "dj.heterogeneous(), gamma shape 4); --replica-table: both unless "
                           "given")
  parser.add_argument("--scaling", action="store_true",
                      help="engine only, over --workers (comma list)")
  parser.add_argument("--replica-table", action="store_true",
                      help="engine only: per-replica cost over execution x N x timing x R "
                           "and the ratios to R=1")
  parser.add_argument("--conv", default="auto", choices=dana_jax_conv.MODES,
                      help="convolution gradients: dana_jax.conv's choice per backend, "
                           "always explicit, or XLA's own")
  parser.add_argument("--mesh-workers", type=int, default=1,
                      help="devices to split each block's gradients over (execution=blocks)")
  parser.add_argument("--compile-cache", default=None,
                      help="directory for JAX's persistent compilation cache (compile_seconds "
                           "of a cache hit is small); --replica-table defaults to "
                           f"{TABLE_CACHE}, '' turns it off")
  parser.add_argument("--tag", default=None, help="a label recorded in every row")
  parser.add_argument("--out", default=str(RESULTS))
  args = parser.parse_args(argv)
  if args.compile_cache is None and args.replica_table:
    args.compile_cache = str(TABLE_CACHE)
  if args.scaling and args.replica_table:
    parser.error("--scaling and --replica-table are separate modes: choose one")
  if args.steps is None:
    args.steps = TABLE_STEPS.get(args.model, 100) if args.replica_table else 100
  if args.steps < 1:
    parser.error("--steps must be >= 1")
  if args.conv != "auto":
    dana_jax_conv.EXPLICIT_GRADIENTS[jax.default_backend()] = args.conv == "explicit"
  references = [r for r in args.references.split(",") if r]
  unknown = sorted(set(references) - set(REFERENCES))
  if unknown:
    parser.error(f"--references: unknown {unknown}; choose from {list(REFERENCES)}")
  default_workers = "8,64,256" if args.replica_table else "16"
  workers = [int(n) for n in (args.workers or default_workers).split(",")]
  if not (args.scaling or args.replica_table) and len(workers) != 1:
    parser.error("--workers takes one N (a list only with --scaling or --replica-table)")
  replicas = [int(r) for r in (args.replicas or ("1,4" if args.replica_table else "1"))
              .split(",")]
  if min(replicas) < 1 or (not args.replica_table and len(replicas) != 1):
    parser.error("--replicas takes one R >= 1 (a list only with --replica-table)")
  modes = (args.replica_execution or ("vmap,loop" if args.replica_table else "auto")).split(",")
  if set(modes) - set(dj.REPLICA_EXECUTIONS) or (not args.replica_table and len(modes) != 1):
    parser.error(f"--replica-execution: got {args.replica_execution!r}; choose from "
                 f"{list(dj.REPLICA_EXECUTIONS)} (a comma list only with --replica-table)")
  args.replica_executions, args.replica_execution = modes, modes[0]
  env = environment(argv)
  if args.tag:
    env["tag"] = args.tag
  with compile_cache(args.compile_cache):
    if args.replica_table:
      return replica_table(args, workers, replicas, env)
    return measure_all(args, workers, replicas[0], env, references)


def measure_all(args, workers, replicas, env, references):
  args.replicas = replicas
  args.timing = args.timing or "homogeneous"
  rows = []
  for n in workers:
    new = run_one(args, n, args.model, env, references=[] if args.scaling else references)
    for row in new:
      row["scaling"], row["conv"] = args.scaling, args.conv
      row["mesh_workers"] = args.mesh_workers
    report(new)
    rows += new
    append(args.out, new)
  return rows


if __name__ == "__main__":
  main()
