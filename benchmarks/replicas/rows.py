"""Writing K = 4 rows of 268k floats into [N, P] (R = 1) and [R, N, P] (R = 4) stacks:
a dynamic-update-slice per row, vmapped over replicas (a scatter once batched), against
one ``.at[rows].set`` scatter. Ten blocks per timed call, best of 12
(docs/benchmarks.md, "Replicas"):

    python benchmarks/replicas/rows.py
"""
import time

import jax
import jax.numpy as jnp

P, N, R, K = 268_000, 64, 4, 4


def best_ms(fn, stack):
  fn = jax.jit(fn, donate_argnums=(0,))
  times = []
  for _ in range(12):
    fresh = stack + 0
    jax.block_until_ready(fresh)
    began = time.perf_counter()
    jax.block_until_ready(fn(fresh))
    times.append(time.perf_counter() - began)
  return 1e3 * min(times)


def main():
  rows1, rows_r = jnp.ones((K, P)), jnp.ones((R, K, P))
  idx1 = jnp.array([3, 10, 20, 40])
  idx_r = idx1[None] + jnp.arange(R)[:, None]
  ten = lambda body: lambda s: jax.lax.fori_loop(0, 10, body, s)

  def dus1(i, s):
    for k in range(K):
      s = jax.lax.dynamic_update_index_in_dim(s, rows1[k] * i, (idx1[k] + i) % N, 0)
    return s

  def dus_r(i, s):
    write = jax.vmap(lambda a, j, r: jax.lax.dynamic_update_index_in_dim(a, r, j, 0))
    for k in range(K):
      s = write(s, (idx_r[:, k] + i) % N, rows_r[:, k] * i)
    return s

  def scatter1(i, s):
    return s.at[(idx1 + i) % N].set(rows1 * i, unique_indices=True, mode="drop")

  def scatter_r(i, s):
    write = jax.vmap(lambda a, j, r: a.at[j].set(r, unique_indices=True, mode="drop"))
    return write(s, (idx_r + i) % N, rows_r * i)

  for name, fn, shape, rows in [("DUS, R = 1", dus1, (N, P), K),
                                ("DUS vmapped, R = 4", dus_r, (R, N, P), R * K),
                                ("scatter, R = 1", scatter1, (N, P), K),
                                ("scatter vmapped, R = 4", scatter_r, (R, N, P), R * K)]:
    ms = best_ms(ten(fn), jnp.ones(shape))
    print(f"{name}: {ms / 10:.3f} ms per block, {ms / 10 / rows:.3f} ms per row")


if __name__ == "__main__":
  main()
