"""Under jax_enable_x64 the optimizers and the built-in models compute in float64 end to end.

Each check runs in a subprocess with ``JAX_ENABLE_X64=1``, so the global flag does
not leak into the other tests.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_x64(code: str) -> str:
  env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu",
         "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                        os.environ.get("PYTHONPATH", "")])}
  result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def test_every_algorithm_keeps_float64_params_and_state():
  out = run_x64("""
      import jax, jax.numpy as jnp, numpy as np, optax
      import dana_jax
      from dana_jax.algorithms import ALGORITHMS
      from dana_jax.learning_rates import paper_learning_rate
      assert jax.config.jax_enable_x64

      def check(tree, what):
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
              dtype = jnp.asarray(leaf).dtype
              assert dtype in (jnp.float64, jnp.int32, jnp.int64), (what, path, dtype)

      schedule = paper_learning_rate(0.1, steps_per_epoch=2, warmup_epochs=1, decay_epochs=(2,))
      rng = np.random.default_rng(0)
      bases = [(n, {"base": b}) for n in ("sa", "ga", "dc_asgd", "delay_adaptive")
               for b in ("adam", "adamw", "muon")]
      outers = [("async_local_sgd", {"outer": o}) for o in ("delayed_nesterov", "ga")] + [
          ("async_local_sgd", {"outer": "ga", "base": "adam"})]
      for name, options in [(n, {}) for n in ALGORITHMS] + bases + outers:
          for lr in (0.1, schedule):
              tx = dana_jax.optimizer(name, learning_rate=lr, momentum=0.9, weight_decay=1e-3,
                                      num_workers=3, **options)
              params = {"a": jnp.asarray(rng.normal(size=(3, 2))), "b": jnp.ones(4)}
              assert params["a"].dtype == jnp.float64
              state = tx.init(params)
              check(state, (name, "init"))
              update = jax.jit(tx.update)
              for t in range(5):
                  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
                  stale = jax.tree.map(lambda p: p - 1e-3, params)
                  updates, state = update(grads, state, params, lag=t % 3, stale_params=stale,
                                          worker=t % 3)
                  check(updates, (name, t, "updates"))
                  check(state, (name, t, "state"))
                  params = optax.apply_updates(params, updates)
                  check(params, (name, t, "params"))
              float_leaves = [x for x in jax.tree_util.tree_leaves(state)
                              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
              assert float_leaves, name
      print("checked", len(ALGORITHMS), len(bases) + len(outers))
  """)
  assert "checked 15 15" in out


def test_ga_and_dana_ga_match_the_float64_reference_to_1e9():
  """A few steps against the numpy float64 transcription of docs/spec.md §2.4 / §2.8."""
  run_x64("""
      import jax, jax.numpy as jnp, numpy as np, optax
      from jax.flatten_util import ravel_pytree
      from tests.references.update_rules_s2 import ReferenceMaster
      import dana_jax

      def lr(t):
          return 0.1 * jnp.where(jnp.asarray(t) >= 4, 0.1, 1.0)

      def ref_lr(t):
          return 0.1 * (0.1 if t >= 4 else 1.0)

      for name in ("ga", "dana_ga"):
          for options in ({}, {"penalize_weight_decay": False}, {"penalty": "max"}):
              rng = np.random.default_rng(1)
              params = {"a": jnp.asarray(rng.normal(size=(3, 4))),
                        "b": jnp.asarray(rng.normal(size=(5,)))}
              flat, unravel = ravel_pytree(params)
              assert flat.dtype == jnp.float64
              tx = dana_jax.optimizer(name, learning_rate=lr, momentum=0.9, weight_decay=1e-2,
                                      num_workers=3, **options)
              state = tx.init(params)
              ref = ReferenceMaster(name, np.asarray(flat), num_workers=3, lr=ref_lr,
                                    momentum=0.9, weight_decay=1e-2, dtype=np.float64,
                                    **options)
              lags = [0, 0, 3, 1, 5, 0, 2, 7]
              penalised = False
              for t, lag in enumerate(lags):
                  g = rng.normal(size=flat.shape)
                  stale = ref.read() - rng.normal(scale=0.05, size=flat.shape) * (lag > 0)
                  updates, state = tx.update(unravel(jnp.asarray(g)), state, params, lag=lag,
                                             stale_params=unravel(jnp.asarray(stale)),
                                             worker=t % 3)
                  params = optax.apply_updates(params, updates)
                  ref.apply(g, lag, stale, t % 3)
                  ours = np.asarray(ravel_pytree(params)[0])
                  assert ours.dtype == np.float64
                  np.testing.assert_allclose(ours, ref.theta, rtol=1e-9, atol=0,
                                             err_msg=f"{name} {options} step {t}")
                  penalised |= bool(np.max(ref.last_G) > 1.01)
              assert penalised, (name, options)  # the penalty acted: the check has teeth
      print("ok")
  """)


@pytest.mark.slow  # the conv nets in float64; the MLP runs in the default run
def test_builtin_models_run_in_float64():
  run_x64("""
      import jax, jax.numpy as jnp, numpy as np
      import dana_jax as dj
      from dana_jax import models

      def all_float64(tree, what, may_be_empty=False):
          dtypes = {x.dtype for x in jax.tree_util.tree_leaves(tree)}
          assert dtypes == {jnp.dtype(jnp.float64)} or (may_be_empty and not dtypes), (what, dtypes)

      shapes = [(models.MLP((8,)), (8, 8)), (models.SmallCNN(channels=(4,), hidden=8), (8, 8)),
                (models.CifarResNet(8), (16, 16, 3)), (models.WideResNet(10, 1), (16, 16, 3)),
                (models.ResNet50(num_classes=5, stage_sizes=(1, 1)), (32, 32, 3))]
      for module, shape in shapes:
          name = type(module).__name__
          model = dj.flax_model(module, shape)
          params, state = jax.eval_shape(model.init, jax.random.key(0))
          all_float64(params, name)
          all_float64(state, name, may_be_empty=name == "MLP")
          # Abstractly (dtypes only, nothing compiled): the training pass and the fold.
          x = jax.ShapeDtypeStruct((2,) + shape, jnp.float64)
          (value, contribution), grads = jax.eval_shape(
              jax.value_and_grad(model.loss, has_aux=True), params, x,
              jax.ShapeDtypeStruct((2,), jnp.int32), jax.random.key(2))
          assert value.dtype == jnp.float64, name
          all_float64(grads, name)
          all_float64(jax.eval_shape(model.fold, state, contribution), name, name == "MLP")
          assert jax.eval_shape(model.predict, params, state, x).dtype == jnp.float64, name

      # Concretely on one with convolutions and BatchNorm.
      model = dj.flax_model(models.SmallCNN(channels=(4,), hidden=8), (8, 8))
      params, state = jax.jit(model.init)(jax.random.key(0))
      x = jax.random.normal(jax.random.key(1), (4, 8, 8), jnp.float64)
      (value, contribution), grads = jax.jit(jax.value_and_grad(model.loss, has_aux=True))(
          params, x, jnp.arange(4), jax.random.key(2))
      assert value.dtype == jnp.float64 and np.isfinite(value)
      all_float64(grads, "grads")
      all_float64(model.fold(state, contribution), "fold")
      print("ok")
  """)


@pytest.mark.slow  # test_every_execution_... is the default run's engine-in-float64 case
def test_engine_runs_ga_and_dana_ga_in_float64_like_the_float64_reference():
  """The whole simulation — schedule, gradients, the engine's state, BatchNorm folding — in
  float64, against tests/references/environment_s1.py's event simulation in float64."""
  out = run_x64("""
      import jax, jax.numpy as jnp, numpy as np
      from jax.flatten_util import ravel_pytree
      import dana_jax as dj
      from dana_jax import data, models
      from tests.references.environment_s1 import event_simulation

      x, y, _, _ = data.digits()
      x, y = x[:320], y[:320]
      model = dj.flax_model(models.SmallCNN(channels=(4,), hidden=8), (8, 8))
      lr = lambda b: lambda t: b * jnp.where(jnp.asarray(t) >= 25, 0.1, 1.0)
      for algorithm, execution in (("ga", "steps"), ("dana_ga", "blocks")):
        sim = dj.Simulator(model, algorithm, x, y, num_workers=3, batch_size=16,
                           hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3),
                           learning_rate_schedule=lr, timing=dj.heterogeneous(),
                           execution=execution)
        result = dj.simulate(sim, 40, chunk_steps=15, progress=False)
        leaves = jax.tree_util.tree_leaves(result.state)
        assert all(l.dtype in (jnp.float64, jnp.int32) for l in leaves), {l.dtype for l in leaves}
        timing = dj.heterogeneous()
        params0, state0 = model.init(jax.random.fold_in(jax.random.key(0), 1))
        theta, stats, _ = event_simulation(
            model, algorithm, x, y, batch_times=timing.draw(timing.worker_streams(3, 0), 0, 42),
            num_steps=40, num_workers=3, batch_size=16,
            lr=lambda t: 0.05 * (0.1 if t >= 25 else 1.0), momentum=0.9, weight_decay=1e-3,
            seed=0, params0=params0, state0=state0, dtype=np.float64)
        ours = np.asarray(ravel_pytree(result.state.params)[0])
        ref = np.asarray(ravel_pytree(theta)[0])
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
        err = np.max(np.abs(ours - ref) / np.abs(ref).max())
        np.testing.assert_allclose(ravel_pytree(result.state.model_state)[0],
                                   ravel_pytree(stats)[0], rtol=1e-9, atol=1e-12)
        print(algorithm, execution, err)
      """)
  assert len(out.splitlines()) == 2, out


def test_every_execution_and_replica_execution_runs_in_float64():
  """Two replicas (seeds) under each execution × replica execution, in float64: each
  replica equals tests/references/environment_s1.py's float64 event simulation of its seed alone. (A
  replica loop once mixed int64 loop counters with int32 worker indices.)"""
  out = run_x64("""
      import jax, jax.numpy as jnp, numpy as np
      from jax.flatten_util import ravel_pytree
      import dana_jax as dj
      from dana_jax import data, models
      from tests.references.environment_s1 import event_simulation

      x, y, _, _ = data.digits()
      x, y = x[:160], y[:160]
      model = dj.flax_model(models.MLP((8,)), (8, 8))
      seeds, steps = [0, 1], 10
      fast = model._replace(loss=jax.jit(model.loss))  # the reference's gradients, compiled
      refs = []
      for s in seeds:
        timing = dj.heterogeneous()
        params0, state0 = model.init(jax.random.fold_in(jax.random.key(s), 1))
        theta, _, _ = event_simulation(
            fast, "dana_ga", x, y,
            batch_times=timing.draw(timing.worker_streams(3, s), 0, steps + 2),
            num_steps=steps, num_workers=3, batch_size=16, lr=lambda t: 0.05, momentum=0.9,
            weight_decay=1e-3, seed=s, params0=params0, state0=state0, dtype=np.float64)
        refs.append(np.asarray(ravel_pytree(theta)[0]))
      for execution in ("steps", "blocks"):
        for replicas in ("vmap", "loop"):
          sim = dj.Simulator(model, "dana_ga", x, y, num_workers=3, batch_size=16,
                             hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3),
                             timing=dj.heterogeneous(), execution=execution, seeds=seeds,
                             replica_execution=replicas)
          result = dj.simulate(sim, steps, chunk_steps=steps, progress=False)
          leaves = jax.tree_util.tree_leaves(result.state)
          assert all(l.dtype in (jnp.float64, jnp.int32) for l in leaves), {
              l.dtype for l in leaves}
          for r, ref in enumerate(refs):
            ours = np.asarray(ravel_pytree(dj.replica(result.state, r).params)[0])
            assert ours.dtype == np.float64
            np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{execution} {replicas} replica {r}")
          print(execution, replicas, "ok")
      """)
  assert len(out.splitlines()) == 4, out
