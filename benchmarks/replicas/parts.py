"""Where blocks spend the replicas' time: the engine with pieces replaced (timing only).

    python benchmarks/replicas/parts.py base|nomask|nojob|nojob_nomask|nojob_noevent

``nomask``: the block's events unmasked; ``nojob``: each job replaced by a scaled copy
of its read row (no gradient); ``noevent``: each event by one that changes nothing.
Fashion-sized MLP on synthetic data, NAG, heterogeneous timing, blocks K = 4, N = 64,
R = 1 and 4, best of 2 chunks of 400 steps (docs/benchmarks.md, "Replicas"). The
results of a patched run are wrong by design: only its time is of interest.
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import dana_jax as dj
from dana_jax import models
from dana_jax import schedule as S
from dana_jax.engine import step as ST

variant = sys.argv[1] if len(sys.argv) > 1 else "base"
event = ST.master_event
if "nomask" in variant:
  ST.master_event = lambda parts, tx, hp, state, worker, own, arrival, kind=None: event(
      parts, tx, hp, state, worker, own, arrival, None)
if "noevent" in variant:
  ST.master_event = lambda parts, tx, hp, state, worker, own, arrival, kind=None: (
      state, {"lag": own.read_step, "gap/rms": arrival[2], "loss/train": arrival[2],
              "learning_rate": arrival[2]})
if "nojob" in variant:
  ST._jobs = lambda parts, own, examples, batches, data_key, data, hp: (
      jax.tree.map(lambda r: r * 0.001, own.row), {}, jnp.zeros(own.read_step.shape), None)

rng = np.random.default_rng(0)
x = rng.normal(size=(4096, 28, 28, 1)).astype(np.float32)
y = rng.integers(0, 10, 4096).astype(np.int32)
model = models.flax_model(models.MLP((256, 256), 10), (28, 28, 1))
steps = 400
for seeds in (0, [0, 1, 2, 3]):
  sim = dj.Simulator(model, "nag", x, y, num_workers=64, batch_size=32, execution="blocks",
                     block_size=4, seeds=seeds, timing=S.heterogeneous())
  scheds = dj.engine.plan.schedules(sim.spec, 3 * steps, steps)
  nb = dj.engine.plan.rows_per_chunk(sim.spec, scheds, 3 * steps, steps)
  state = sim.init()
  state, out = sim.run_chunk(state, scheds, 0, steps, nb)
  jax.block_until_ready(out)
  ts = []
  for c in (1, 2):
    inputs = dj.engine.plan.chunk_inputs(sim.spec, scheds, c * steps, (c + 1) * steps, nb,
                                         orders=sim.orders, host_data=sim.host_data)
    t = time.perf_counter()
    state, out = sim.run_chunk(state, scheds, c * steps, (c + 1) * steps, nb, inputs)
    jax.block_until_ready(out)
    ts.append(time.perf_counter() - t)
  r = 1 if isinstance(seeds, int) else len(seeds)
  print(variant, 64, r, f"{1e3 * min(ts) / steps / r:.3f} ms/step/replica", flush=True)
