"""One MLP gradient alone, and vmapped over 4 jobs and over 4 replicas × 4 jobs.

    python benchmarks/replicas/gradients.py

Best of 20 jitted calls, B = 32, the 784-256-256-10 MLP (docs/benchmarks.md, "Replicas").
"""
import time

import jax
import jax.numpy as jnp
import numpy as np

import dana_jax as dj
from dana_jax import models


def best_ms(fn, *args):
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(20):
    began = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - began)
  return 1e3 * min(times)


def main():
  model = dj.flax_model(models.MLP((256, 256), 10), (28, 28, 1))
  params, _ = model.init(jax.random.key(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 28, 28, 1)), jnp.float32)
  y = jnp.zeros(32, jnp.int32)
  grad = lambda p, x: jax.grad(lambda p: model.loss(p, x, y, jax.random.key(1))[0])(p)
  stack = lambda t, n: jax.tree.map(lambda a: jnp.stack([a] * n), t)
  print(f"1 gradient: {best_ms(grad, params, x):.3f} ms")
  print(f"vmap K = 4: {best_ms(jax.vmap(grad), stack(params, 4), stack(x, 4)) / 4:.3f} "
        "ms per gradient")
  both = best_ms(jax.vmap(jax.vmap(grad)), stack(stack(params, 4), 4), stack(stack(x, 4), 4))
  print(f"vmap R = 4 × K = 4: {both / 16:.3f} ms per gradient")


if __name__ == "__main__":
  main()
