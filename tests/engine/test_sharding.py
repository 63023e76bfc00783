"""Replicas and workers sharded over a device mesh give the single-device results.

Runs on the 8 host devices that conftest.py asks XLA:CPU for.
"""

import jax
import numpy as np
import pytest
from test_engine import CNN_BN, MLP, digits_subset, flat

import dana_jax as dj

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (host) devices")


def run(algorithm, mesh, *, model=MLP, num_workers=6, seeds=(0, 1, 2, 3), steps=30,
        execution="blocks", block_size=None, data=None):
  x, y = digits_subset()
  sim = dj.Simulator(model, algorithm, *(data or (x, y)), num_workers=num_workers,
                     batch_size=16, hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3),
                     timing=dj.heterogeneous(), execution=execution, block_size=block_size,
                     seeds=list(seeds) if isinstance(seeds, tuple) else seeds, mesh=mesh)
  return dj.simulate(sim, steps, chunk_steps=12, eval_data=(x[:64], y[:64]), progress=False)


def assert_same_run(a, b, rtol=1e-4, atol=1e-4):
  """Same metrics in every chunk of every replica and the same final parameters.

  Equal up to float32 summation order: XLA compiles a different batch of
  replicas (or of weight versions) per device. GA's |Δ|/C amplifies those
  rounding differences while C is small: for the BatchNorm CNN with GA over 4
  worker devices the largest parameter difference is 2.5e-7 after 3 steps and
  3.6e-5 after 30 (measured); a wrong read or gradient would differ by ~1e-2.
  """
  assert len(a.history) == len(b.history)
  for ha, hb in zip(a.history, b.history, strict=True):
    for ra, rb in zip(ha["replicas"], hb["replicas"], strict=True):
      assert ra.keys() == rb.keys()
      for key in ra:
        np.testing.assert_allclose(ra[key], rb[key], rtol=rtol, atol=atol, err_msg=key)
  np.testing.assert_allclose(flat(jax.device_get(a.state.params)),
                             flat(jax.device_get(b.state.params)), rtol=rtol, atol=atol)


@pytest.mark.parametrize("execution", ["steps", pytest.param("blocks", marks=pytest.mark.slow)])
def test_replicas_over_devices_equal_one_device(execution):
  alone = run("dana_ga", None, execution=execution)
  sharded = run("dana_ga", dj.make_mesh(replicas=4), execution=execution)
  assert_same_run(sharded, alone)
  leaf = jax.tree_util.tree_leaves(sharded.state.read_params)[0]
  assert len(leaf.sharding.device_set) == 4  # really split, not replicated


@pytest.mark.parametrize("algorithm", ["ga", pytest.param("dana_ga", marks=pytest.mark.slow)])
def test_block_gradients_over_worker_devices_equal_one_device(algorithm):
  # K = N = 6 is padded to 8 columns for 4 worker devices; a conv net with BatchNorm.
  alone = run(algorithm, None, model=CNN_BN, seeds=(0, 1))
  sharded = run(algorithm, dj.make_mesh(workers=4), model=CNN_BN, seeds=(0, 1))
  assert_same_run(sharded, alone)
  both = run(algorithm, dj.make_mesh(replicas=2, workers=4), model=CNN_BN, seeds=(0, 1))
  assert_same_run(both, alone)


def test_single_run_and_host_data_on_a_worker_mesh():
  x, y = digits_subset()
  alone = run("nag", None, seeds=3, block_size=4)
  sharded = run("nag", dj.make_mesh(workers=2), seeds=3, block_size=4,
                data=(dj.ArrayData(x, y), None))
  assert_same_run(sharded, alone)


def test_synchronous_gradients_over_worker_devices_equal_one_device():
  alone = run("ssgd", None, num_workers=4, seeds=(0, 1), steps=10)
  sharded = run("ssgd", dj.make_mesh(replicas=2, workers=4), num_workers=4, seeds=(0, 1),
                steps=10)
  assert_same_run(sharded, alone)


@pytest.mark.parametrize("kwargs, field", [
    (dict(mesh=dj.make_mesh(replicas=3), seeds=[0, 1]), "mesh.replicas"),
    (dict(mesh=dj.make_mesh(replicas=2), seeds=0), "mesh.replicas"),
    (dict(mesh=dj.make_mesh(replicas=2), seeds=[0, 1], replica_execution="loop"),
     "replica_execution.*needs 'vmap'"),
    (dict(mesh=dj.make_mesh(workers=2), execution="steps"), "mesh.workers"),
    (dict(mesh=dj.make_mesh(workers=4), algorithm="ssgd", num_workers=6), "mesh.workers"),
    (dict(mesh="8 devices"), "mesh"),
])
def test_bad_meshes_are_refused_naming_the_field(kwargs, field):
  x, y = digits_subset()
  args = dict(algorithm="nag", num_workers=6, batch_size=16, execution="blocks")
  args.update(kwargs)
  with pytest.raises(ValueError, match=field):
    dj.Simulator(MLP, args.pop("algorithm"), x, y, **args)


def test_make_mesh_says_how_to_get_more_host_devices():
  with pytest.raises(ValueError, match="xla_force_host_platform_device_count=16"):
    dj.make_mesh(replicas=4, workers=4)
  with pytest.raises(ValueError, match="mesh.workers"):
    dj.make_mesh(workers=0)
