"""The engine against an independent event-driven reference (docs/spec.md §1, §2)."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import data, models
from dana_jax.engine import memory, plan
from tests.references.environment_s1 import data_order_batch, event_simulation, lags_and_workers

ASYNC = ["sgd", "asgd", "nag", "sa", "ga", "dana", "dana_sa", "dana_ga", "dc_asgd"]


@functools.cache
def digits_subset(n=320):
  x, y, _, _ = data.digits()
  return x[:n], y[:n]


MLP = dj.flax_model(models.MLP((16,)), (8, 8))
CNN_BN = dj.flax_model(models.SmallCNN(channels=(4,), hidden=8), (8, 8))


def decayed(base):
  return lambda t: base * jnp.where(jnp.asarray(t) >= 25, 0.1, 1.0)


def flat(tree):
  return np.asarray(ravel_pytree(tree)[0])


def run_engine(algorithm, model=MLP, *, num_workers, steps, execution="steps", block_size=None,
               timing=None, seeds=0, lr=0.05, momentum=0.9, chunk_steps=None, **kwargs):
  x, y = digits_subset()
  sim = dj.Simulator(model, algorithm, x, y, num_workers=num_workers, batch_size=16,
                     hyperparams=dj.Hyperparams(lr, momentum, 1e-3),
                     learning_rate_schedule=decayed, timing=timing or dj.heterogeneous(),
                     execution=execution, block_size=block_size, seeds=seeds, **kwargs)
  return dj.simulate(sim, steps, chunk_steps=chunk_steps or 15, progress=False)


def run_reference(algorithm, model=MLP, *, num_workers, steps, timing=None, seed=0,
                  lr=0.05, momentum=0.9):
  x, y = digits_subset()
  timing = timing or dj.heterogeneous()
  times = timing.draw(timing.worker_streams(num_workers, seed), 0, steps + 2)
  params0, state0 = model.init(jax.random.fold_in(jax.random.key(seed), 1))
  theta, state, events = event_simulation(
      model, algorithm, x, y, batch_times=times, num_steps=steps, num_workers=num_workers,
      batch_size=16, lr=lambda t: lr * (0.1 if t >= 25 else 1.0), momentum=momentum,
      weight_decay=1e-3, seed=seed, params0=params0, state0=state0,
      # The engine computes in float32; GA's |Δ|/C is ill-conditioned where C is
      # tiny, so a float64 reference drifts from a float32 one by ~1e-4 (measured).
      dtype=np.float32)
  return (theta, state, *lags_and_workers(events))


# By default every algorithm at N = 3 and DANA-GA at N = 8 (blocks); the rest: -m slow.
@pytest.mark.parametrize("algorithm,num_workers", [
    *[(a, 3) for a in ASYNC], ("dana_ga", 8),
    *[pytest.param(a, n, marks=pytest.mark.slow) for n in (1, 8) for a in ASYNC
      if (a, n) != ("dana_ga", 8)]])
def test_engine_matches_event_driven_reference(algorithm, num_workers):
  steps = 40  # 20 batches per epoch: crosses an epoch and the η decay at step 25
  execution = "blocks" if num_workers == 8 else "steps"
  result = run_engine(algorithm, num_workers=num_workers, steps=steps, execution=execution)
  theta, _, lags, workers = run_reference(algorithm, num_workers=num_workers, steps=steps)
  np.testing.assert_array_equal(result.schedules[0].worker, workers)
  np.testing.assert_array_equal(result.schedules[0].lag, lags)
  np.testing.assert_allclose(flat(result.state.params), flat(theta), rtol=2e-4, atol=2e-5)
  engine_lag = [h["replicas"][0]["lag/mean"] for h in result.history]
  np.testing.assert_allclose(engine_lag, [np.mean(lags[i:i + 15]) for i in range(0, 40, 15)])


@pytest.mark.parametrize("algorithm", ["nag", "dana_ga"])
def test_batchnorm_statistics_folded_at_arrival(algorithm):
  result = run_engine(algorithm, CNN_BN, num_workers=3, steps=12, execution="blocks")
  theta, stats, _, _ = run_reference(algorithm, CNN_BN, num_workers=3, steps=12)
  np.testing.assert_allclose(flat(result.state.params), flat(theta), rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose(flat(result.state.model_state), flat(stats), rtol=2e-4, atol=2e-5)


def fast_worker_trace(num_workers, jobs=200):
  times = np.full((num_workers, jobs), 10.0)
  times[0] = 2.5  # worker 0 arrives several times in a row
  times[1, ::3] = 1.0
  return dj.TraceTiming(times)


TIMINGS = {"homo": dj.homogeneous(), "hetero": dj.heterogeneous(shape=1.0),
           "trace": fast_worker_trace(8)}
FAST_BLOCKS = [(3, "nag", "homo"), (8, "ga", "hetero"), (3, "dana_ga", "trace")]


# By default each timing, algorithm and block size once; the other 15: -m slow.
@pytest.mark.parametrize("block_size,algorithm,timing", [
    pytest.param(b, a, TIMINGS[t], id=f"{b}-{a}-{t}",
                 marks=() if (b, a, t) in FAST_BLOCKS else pytest.mark.slow)
    for b in (3, 8) for a in ("nag", "ga", "dana_ga") for t in TIMINGS])
def test_steps_and_blocks_agree(timing, algorithm, block_size):
  a = run_engine(algorithm, num_workers=8, steps=60, timing=timing)
  b = run_engine(algorithm, num_workers=8, steps=60, timing=timing, execution="blocks",
                 block_size=block_size)
  np.testing.assert_allclose(flat(a.state.params), flat(b.state.params), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(flat(a.state.opt_state), flat(b.state.opt_state), rtol=1e-5,
                             atol=1e-6)
  for ha, hb in zip(a.history, b.history, strict=True):
    for key in ("lag/mean", "lag/max", "lag/hist", "loss/train", "gap/rms"):
      np.testing.assert_allclose(ha["replicas"][0][key], hb["replicas"][0][key], rtol=1e-4,
                                 atol=1e-6, err_msg=key)


def test_one_worker_sgd_equals_optax_sgd():
  x, y = digits_subset()
  steps, lr = 30, 0.05
  result = run_engine("sgd", num_workers=1, steps=steps, lr=lr)
  params, _ = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  tx = optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(decayed(lr), momentum=0.9))
  state = tx.init(params)
  grad = jax.jit(jax.grad(lambda p, xb, yb: MLP.loss(p, xb, yb, None)[0]))
  for t in range(steps):
    idx = data_order_batch(0, x.shape[0], 16, t)
    updates, state = tx.update(grad(params, x[idx], y[idx]), state, params)
    params = optax.apply_updates(params, updates)
    # step for step: run the engine to the same step and compare
  np.testing.assert_allclose(flat(result.state.params), flat(params), rtol=1e-5, atol=1e-6)


def test_one_worker_sgd_step_for_step():
  x, y = digits_subset()
  params, _ = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  tx = optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(decayed(0.05), momentum=0.9))
  state = tx.init(params)
  grad = jax.jit(jax.grad(lambda p, xb, yb: MLP.loss(p, xb, yb, None)[0]))
  sim = dj.Simulator(MLP, "sgd", x, y, num_workers=1, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), learning_rate_schedule=decayed)
  sim_state = sim.init()
  schedules = plan.schedules(sim.spec, 30, 1)
  for t in range(30):
    sim_state, _ = sim.run_chunk(sim_state, schedules, t, t + 1)
    idx = data_order_batch(0, x.shape[0], 16, t)
    updates, state = tx.update(grad(params, x[idx], y[idx]), state, params)
    params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(flat(sim_state.params), flat(params), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("execution,replica_execution", [
    ("blocks", "vmap"),  # the representative; the other three: -m slow
    *[pytest.param(e, m, marks=pytest.mark.slow)
      for e, m in (("steps", "vmap"), ("steps", "loop"), ("blocks", "loop"))]])
def test_replicas_equal_runs_made_alone(execution, replica_execution):
  seeds, lrs = [0, 1, 2], [0.05, 0.02, 0.08]
  x, y = digits_subset()
  together = run_engine("dana_ga", num_workers=4, steps=40, seeds=seeds, lr=lrs,
                        execution=execution, replica_execution=replica_execution)
  evaluated = dj.engine.evaluate_replicas(MLP, together.state.params,
                                          together.state.model_state, x[:100], y[:100],
                                          replica_execution=replica_execution)
  for r, (seed, lr) in enumerate(zip(seeds, lrs, strict=True)):
    alone = run_engine("dana_ga", num_workers=4, steps=40, seeds=seed, lr=lr,
                       execution=execution)
    ours, its = flat(dj.replica(together.state, r).params), flat(alone.state.params)
    losses = ([h["replicas"][r]["loss/train"] for h in together.history],
              [h["replicas"][0]["loss/train"] for h in alone.history])
    single = dj.evaluate(MLP, alone.state.params, alone.state.model_state, x[:100], y[:100])
    if replica_execution == "loop":  # one after another: each replica is its run, bitwise
      np.testing.assert_array_equal(ours, its)
      assert losses[0] == losses[1]
      assert evaluated[r] == single
    else:  # batched: equal up to float32 rounding (GA amplifies it)
      np.testing.assert_allclose(ours, its, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(*losses, rtol=1e-5)
      np.testing.assert_allclose(evaluated[r]["loss"], single["loss"], rtol=1e-5)


def test_replica_execution_is_checked_and_auto_is_per_backend():
  x, y = digits_subset()
  with pytest.raises(ValueError, match=r"replica_execution.*'pmap'.*choose one of"):
    dj.Simulator(MLP, "nag", x, y, num_workers=2, batch_size=16, replica_execution="pmap")
  with pytest.raises(ValueError, match="replica_execution"):
    dj.engine.evaluate_replicas(MLP, None, None, x, y, replica_execution="pmap")
  sim = dj.Simulator(MLP, "nag", x, y, num_workers=2, batch_size=16, seeds=[0, 1])
  assert sim.spec.replica_execution == dj.default_replica_execution() == "loop"  # tests run on CPU
  assert dj.default_replica_execution("gpu") == dj.default_replica_execution("tpu") == "vmap"


@pytest.mark.parametrize("execution", ["steps", "blocks"])
def test_same_seed_same_metrics_and_chunk_size_does_not_matter(execution):
  a = run_engine("ga", num_workers=5, steps=45, chunk_steps=15, execution=execution)
  b = run_engine("ga", num_workers=5, steps=45, chunk_steps=15, execution=execution)
  assert [h["replicas"] for h in a.history] == [h["replicas"] for h in b.history]
  np.testing.assert_array_equal(flat(a.state.params), flat(b.state.params))
  c = run_engine("ga", num_workers=5, steps=45, chunk_steps=9, execution=execution)
  np.testing.assert_array_equal(flat(a.state.params), flat(c.state.params))
  np.testing.assert_array_equal(flat(a.state.opt_state), flat(c.state.opt_state))
  mean_lag = lambda r, k: np.sum([h["replicas"][0]["lag/mean"] * k for h in r.history])
  np.testing.assert_allclose(mean_lag(a, 15), mean_lag(c, 9))


def test_ssgd_averages_n_gradients_on_the_same_parameters():
  x, y = digits_subset()
  n, steps = 4, 6
  sim = dj.Simulator(MLP, "ssgd", x, y, num_workers=n, batch_size=16,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3))
  result = dj.simulate(sim, steps, chunk_steps=3, progress=False)
  params, _ = MLP.init(jax.random.fold_in(jax.random.key(0), 1))
  tx = optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(0.05, 0.9, nesterov=True))
  state = tx.init(params)
  grad = jax.grad(lambda p, xb, yb: MLP.loss(p, xb, yb, None)[0])
  for t in range(steps):
    grads = [grad(params, *(lambda i: (x[i], y[i]))(data_order_batch(0, x.shape[0], 16,
                                                                       t * n + w)))
             for w in range(n)]
    mean = jax.tree.map(lambda *g: sum(g) / n, *grads)
    updates, state = tx.update(mean, state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(flat(result.state.params), flat(params), rtol=1e-5, atol=1e-6)
  assert result.history[-1]["replicas"][0]["lag/max"] == 0


def test_memory_estimate_counts_worker_stacks_and_dana_momenta():
  x, y = digits_subset()
  n_params = flat(MLP.init(jax.random.key(0))[0]).size
  for name, n, momenta in [("nag", 8, 1), ("dana", 8, 8 + 1), ("ssgd", 8, 1)]:
    sim = dj.Simulator(MLP, name, x, y, num_workers=n, batch_size=16)
    est = memory.memory_estimate(sim.spec, MLP)
    assert est["params"] == 4 * n_params
    assert est["worker_stacks"] == (0 if name == "ssgd" else n * 4 * n_params)
    # NAG: one trace; DANA: N momenta and their running sum (plus a few scalars).
    assert momenta * 4 * n_params <= est["optimizer"] < (momenta * 4 * n_params + 64)


@pytest.mark.parametrize("algorithm,execution", [
    ("dana_ga", "blocks"),  # the representative; the other three run with -m slow
    *[pytest.param(a, e, marks=pytest.mark.slow)
      for a, e in (("dana_ga", "steps"), ("ssgd", "steps"), ("ssgd", "blocks"))]])
def test_host_data_gives_the_same_run_as_device_arrays(algorithm, execution):
  """Batches loaded on the host per chunk (HostData, e.g. ImageNet) ≡ gathered on device."""
  x, y = digits_subset()
  crop = lambda images, key: images + 0.1 * jax.random.normal(key, images.shape)
  kwargs = dict(num_workers=4, batch_size=16, seeds=[0, 3], execution=execution,
                augment=crop, hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3),
                timing=dj.heterogeneous())
  device = dj.Simulator(CNN_BN, algorithm, x, y, **kwargs)
  host = dj.Simulator(CNN_BN, algorithm, dj.ArrayData(x, y), None, **kwargs)
  a = dj.simulate(device, 30, chunk_steps=7, eval_data=(x[:50], y[:50]), progress=False)
  b = dj.simulate(host, 30, chunk_steps=7, eval_data=dj.ArrayData(x[:50], y[:50]),
                  progress=False)
  np.testing.assert_array_equal(flat(a.state.params), flat(b.state.params))
  np.testing.assert_array_equal(flat(a.state.model_state), flat(b.state.model_state))
  assert [h["replicas"] for h in a.history] == [h["replicas"] for h in b.history]


def test_host_data_chunks_are_bounded_and_evaluation_can_be_sparse():
  x, y = digits_subset()
  sim = dj.Simulator(MLP, "ga", dj.ArrayData(x, y), None, num_workers=2, batch_size=16)
  assert (plan.default_chunk_steps(sim.spec, sim.host_data.example_nbytes())
          == sim.spec.steps_per_epoch)  # 20 steps of 4 KiB each
  images = np.broadcast_to(np.zeros((1, 4096, 1024), np.float32), (4096, 4096, 1024))
  big = dj.Simulator(MLP, "ga", dj.ArrayData(images, np.zeros(4096, np.int32)), None,
                     num_workers=2, batch_size=32)
  # 512 MiB of inputs per step, 1 GiB per chunk
  assert plan.default_chunk_steps(big.spec, big.host_data.example_nbytes()) == 2
  result = dj.simulate(sim, 40, chunk_steps=5, eval_data=(x[:50], y[:50]),
                       eval_every_steps=20, progress=False)
  evaluated = [h["step"] for h in result.history if "test/error" in h["replicas"][0]]
  assert evaluated == [20, 40]
  with pytest.raises(ValueError, match="train_labels"):
    dj.Simulator(MLP, "ga", dj.ArrayData(x, y), y, num_workers=2, batch_size=16)


@pytest.mark.parametrize("replica_execution", ["vmap", "loop"])
def test_a_configuration_that_cannot_fit_fails_at_start_with_the_estimate(monkeypatch,
                                                                         replica_execution):
  x, y = digits_subset()
  sim = dj.Simulator(MLP, "dana", x, y, num_workers=64, batch_size=16, seeds=[0, 1],
                     replica_execution=replica_execution)
  fits = memory.check_memory(sim.spec, MLP, data_nbytes=sim.data_nbytes)
  est = memory.memory_estimate(sim.spec, MLP)
  per_replica = est["params"] + est["worker_stacks"] + est["optimizer"]
  # The loop's running replica: a working copy of θ and the optimizer state, not the stacks.
  working = est["params"] + est["optimizer"] if replica_execution == "loop" else 0
  assert fits["total"] == 2 * per_replica + working + x.nbytes + y.nbytes
  with pytest.raises(MemoryError, match=r"(?s)needs at least .*N = 64 read copies.*"
                                        r"2 replicas.*Reduce num_workers"):
    memory.check_memory(sim.spec, MLP, data_nbytes=sim.data_nbytes, available=per_replica)
  monkeypatch.setattr(dj.engine.memory, "available_memory", lambda: per_replica)
  with pytest.raises(MemoryError):
    sim.init()  # before anything is compiled or allocated


SLOW = pytest.mark.slow


# By default one run per kind (steps, replicas over blocks, a conv net); the rest: -m slow.
@pytest.mark.parametrize("algorithm,execution,seeds,replica_execution", [
    ("nag", "steps", 0, "auto"),
    *[pytest.param(a, "steps", 0, "auto", marks=SLOW) for a in ("asgd", "sa", "ga", "dc_asgd")],
    ("ga", "blocks", [0, 1, 2, 3], "vmap"),
    *[pytest.param(a, e, [0, 1, 2, 3], m, marks=SLOW) for a in ("nag", "ga") for e, m in
      (("blocks", "vmap"), ("blocks", "loop"), ("steps", "loop")) if (a, m) != ("ga", "vmap")],
    *[pytest.param(a, "blocks", [0, 1, 2, 3], "vmap", marks=SLOW)
      for a in ("asgd", "sa", "dc_asgd")],
    ("nag", "steps", 0, "cnn"), pytest.param("nag", "steps", [0, 1, 2, 3], "cnn", marks=SLOW)])
def test_compiled_steps_copy_no_parameter_sized_array(algorithm, execution, seeds,
                                                      replica_execution):
  # θ, the optimizer state and the read-copy stack are updated in place: a copy of
  # any of them per step would cost as much as the step's bookkeeping
  # (docs/benchmarks.md), and a select over a stack (a vmapped cond) more. DANA is
  # left out: for this tiny model XLA copies its small stacks (for the
  # 270k-parameter MLP only the [N, 10] bias stacks, measured).
  x, y = digits_subset()
  n = 8
  model = dj.flax_model(models.MLP((256, 256)), (8, 8))  # compiled only, never run
  cnn = replica_execution == "cnn"
  if cnn:  # the backward pass reads a conv kernel's and a BN scale's rows again (a
    # transposed kernel): the row writes wait for every gradient (step.master_event)
    model = dj.flax_model(models.SmallCNN(channels=(8, 16), hidden=16), (8, 8))
    replica_execution = "auto"
  sim = dj.Simulator(model, algorithm, x, y, num_workers=n, batch_size=16, execution=execution,
                     block_size=4, seeds=seeds, timing=dj.heterogeneous(),
                     replica_execution=replica_execution)
  schedules, state = plan.schedules(sim.spec, 40, 20), sim.init()
  rows = plan.rows_per_chunk(sim.spec, schedules, 40, 20)
  xs, valid = plan.chunk_inputs(sim.spec, schedules, 0, 20, rows, orders=sim.orders)
  hlo = sim.chunk_fn().lower(state, xs, sim.data_keys, sim.hp(), valid,
                             sim.device_data()).compile().as_text()
  shapes = lambda op: {tuple(int(d) for d in s.split(",") if d)
                       for s in re.findall(rf"= f32\[([0-9,]*)\]\{{[0-9,]*\}} {op}\(", hlo)}
  r = (len(seeds),) if seeds else ()
  leaves = {r + tuple(p.shape[len(r):]) for p in jax.tree_util.tree_leaves(state.params)}
  stacks = {s[:len(r)] + (n,) + s[len(r):] for s in leaves}
  # The loop over replicas reads and writes each replica's rows inside the [R, N, …]
  # stacks (engine.rows): neither a copy of them nor of one replica's [N, …] stacks.
  stacks |= {prefix + (n,) + s[len(r):] for s in leaves for prefix in ((), (1,))}
  # Masked events (blocks' padding) touch one row of each stack: no copy or select of one.
  assert not shapes("copy") & stacks, shapes("copy")
  assert not shapes("select") & stacks, shapes("select")
  assert not shapes("dynamic-slice") & stacks, shapes("dynamic-slice")
  if execution == "steps" and not cnn:  # (conv kernels are copied into their layout)
    assert not shapes("copy") & leaves, shapes("copy")
  # Blocks: XLA copies θ and the optimizer state into each block's inner scan, once per
  # block (O(params); docs/benchmarks.md, "Replicas").


def test_values_after_is_exact_for_every_value():
  from dana_jax.trees import values_after
  tree = {"a": jnp.array([0.0, -0.0, 1e-38, -3.5, jnp.inf, -jnp.inf, jnp.nan]),
          "b": jnp.arange(3, dtype=jnp.bfloat16)}
  for scalar in (jnp.float32(2.0), jnp.float32(jnp.nan), jnp.float32(-jnp.inf)):
    out = jax.jit(values_after)(tree, scalar)
    for k in tree:
      assert out[k].dtype == tree[k].dtype
      np.testing.assert_array_equal(np.asarray(out[k]).view(np.uint8),
                                    np.asarray(tree[k]).view(np.uint8))
