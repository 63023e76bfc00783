"""A/B of the per-replica cost: ms per master step per replica, R = 1 and R = 4.

Fashion-sized MLP (hidden sizes from HID, default 256,256) on synthetic data, NAG,
heterogeneous timing, K = 4, N = 8 and 64, best of 2 chunks of 400 steps, through the
public API (docs/benchmarks.md, "Replicas"):

    python benchmarks/replicas/ab.py blocks[,steps]
    HID=64,64 python benchmarks/replicas/ab.py blocks,steps
"""
import os
import sys
import time

import jax
import numpy as np

import dana_jax as dj
from dana_jax import models
from dana_jax import schedule as S


def per_replica_ms(sim, steps=400):
  scheds = dj.engine.plan.schedules(sim.spec, 3 * steps, steps)
  nb = dj.engine.plan.rows_per_chunk(sim.spec, scheds, 3 * steps, steps)
  state, out = sim.run_chunk(sim.init(), scheds, 0, steps, nb)
  jax.block_until_ready(out)
  times = []
  for c in (1, 2):
    inputs = dj.engine.plan.chunk_inputs(sim.spec, scheds, c * steps, (c + 1) * steps, nb,
                                         orders=sim.orders, host_data=sim.host_data)
    began = time.perf_counter()
    state, out = sim.run_chunk(state, scheds, c * steps, (c + 1) * steps, nb, inputs)
    jax.block_until_ready(out)
    times.append(time.perf_counter() - began)
  return 1e3 * min(times) / steps / sim.spec.num_replicas


def main(executions):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4096, 28, 28, 1)).astype(np.float32)
  y = rng.integers(0, 10, 4096).astype(np.int32)
  hidden = tuple(int(h) for h in os.environ.get("HID", "256,256").split(","))
  model = models.flax_model(models.MLP(hidden, 10), (28, 28, 1))
  for execution in executions:
    for n in (8, 64):
      for seeds in (0, [0, 1, 2, 3]):
        sim = dj.Simulator(model, "nag", x, y, num_workers=n, batch_size=32,
                           execution=execution, block_size=4, seeds=seeds,
                           timing=S.heterogeneous())
        print(execution, n, sim.spec.num_replicas, f"{per_replica_ms(sim):.3f} ms/step/replica",
              flush=True)


if __name__ == "__main__":
  main(sys.argv[1].split(",") if len(sys.argv) > 1 else ["blocks"])
