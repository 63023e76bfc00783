"""The language model's cost in the engine against a plain training step, and its memory.

    python -m benchmarks.lm [--out benchmarks/results_lm.jsonl] [--steps 200] [--repeats 3]

The model of ``experiments/configs/wikitext103.py:offline`` (2 blocks, width 64,
4 heads, windows of 32 bytes, batch 16) on synthetic byte windows. Per master
step, one replica, ``execution="steps"``: the engine for GA, DANA-GA and
asynchronous local SGD (H = 4 AdamW steps per job, so four gradients per
master step) at N = 8 and 16, against a jitted ``lax.scan`` of plain optax SGD
steps on the same model (the synchronous limit: one gradient per step). Also
the memory estimate per worker (``dana_jax.engine.memory.memory_estimate``: the read copy,
DANA's momentum, local SGD's inner AdamW state). One JSON row per measurement.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import dana_jax as dj
from benchmarks.run import environment
from dana_jax import transformer

WINDOW, BATCH = 32, 16
LOCAL = {"local_steps": 4, "inner": "adamw", "inner_learning_rate": 1e-3,
         "outer": "delayed_nesterov"}


def model():
  return transformer.language_model(
      transformer.DecoderLM(width=64, depth=2, heads=4, max_len=WINDOW), WINDOW)


def windows(n=4096, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, size=(n, WINDOW + 1)).astype(np.int32)
  return x[:, :-1], x[:, 1:]


def best_of(call, repeats):
  call()  # compiles
  times = []
  for _ in range(repeats):
    began = time.perf_counter()
    call()
    times.append(time.perf_counter() - began)
  return min(times)


def plain_step_seconds(m, x, y, steps, repeats) -> float:
  """Seconds per step of a jitted scan of plain optax SGD (momentum 0.9) steps."""
  params, _ = m.init(jax.random.key(0))
  tx = optax.sgd(0.01, momentum=0.9)
  xb = jnp.asarray(x[:steps * BATCH].reshape(steps, BATCH, WINDOW))
  yb = jnp.asarray(y[:steps * BATCH].reshape(steps, BATCH, WINDOW))

  @jax.jit
  def run(params, state):
    def step(carry, batch):
      p, s = carry
      grads = jax.grad(lambda q: m.loss(q, batch[0], batch[1], None)[0])(p)
      updates, s = tx.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), None
    return jax.lax.scan(step, (params, state), (xb, yb))[0]

  state = tx.init(params)
  return best_of(lambda: jax.block_until_ready(run(params, state)), repeats) / steps


def engine_step_seconds(m, x, y, algorithm, n, options, steps, repeats):
  sim = dj.Simulator(m, algorithm, x, y, num_workers=n, batch_size=BATCH,
                     hyperparams=dj.Hyperparams(0.01, 0.9, 0.0), algorithm_options=options,
                     execution="steps")
  holder = {"state": sim.init(), "start": 0}
  total = (repeats + 2) * steps
  schedules = dj.engine.plan.schedules(sim.spec, total, steps)
  rows = dj.engine.plan.rows_per_chunk(sim.spec, schedules, total, steps)

  def call():
    start = holder["start"]
    holder["state"], out = sim.run_chunk(holder["state"], schedules, start, start + steps, rows)
    holder["start"] += steps
    jax.block_until_ready(out)

  memory = dj.engine.memory.memory_estimate(sim.spec, sim.model)
  return best_of(call, repeats) / steps, memory, sim.spec.batches_per_step


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.lm", description=__doc__.split(
      "\n\n")[0])
  parser.add_argument("--out", default="benchmarks/results_lm.jsonl")
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  m, (x, y) = model(), windows()
  env = {**environment([]), "command": " ".join(["python -m benchmarks.lm", *(argv or [])])}
  plain = plain_step_seconds(m, x, y, args.steps, args.repeats)
  rows = [{"what": "plain optax SGD step", "ms_per_step": 1e3 * plain, **env}]
  print(f"plain optax SGD: {1e3 * plain:.2f} ms per step")
  for algorithm, options in (("ga", None), ("dana_ga", None), ("async_local_sgd", LOCAL)):
    for n in (8, 16):
      seconds, memory, per_step = engine_step_seconds(m, x, y, algorithm, n, options,
                                                      args.steps, args.repeats)
      per_worker = (memory["worker_stacks"] + (memory["optimizer"] if algorithm == "dana_ga"
                                               else 0)) / n
      row = {"what": "engine", "algorithm": algorithm, "num_workers": n,
             "ms_per_step": 1e3 * seconds, "gradients_per_step": per_step,
             "ms_per_gradient_over_plain": seconds / per_step / plain,
             "params_bytes": memory["params"], "bytes_per_worker": per_worker, **env}
      rows.append(row)
      print(f"{algorithm:16s} N = {n:2d}: {1e3 * seconds:.2f} ms per master step "
            f"({seconds / per_step / plain:.2f}× plain per gradient); "
            f"{per_worker / 2**20:.2f} MiB per worker, params {memory['params'] / 2**20:.2f} MiB")
  path = pathlib.Path(args.out)
  with path.open("a") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")
  print(f"appended {len(rows)} rows to {path}")


if __name__ == "__main__":
  main()
