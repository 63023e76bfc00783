"""docs/spec.md §8.4 per-worker data: each placement and each worker's stream against a
literal numpy transcription of the docs/spec.md paragraph (independent of the module's code)."""

import numpy as np
import pytest

import dana_jax as dj
from dana_jax import data, models
from dana_jax import schedule as S
from dana_jax.engine import plan
from dana_jax.environment import placement as P
from dana_jax.errors import ConfigError
from tests.references.environment_s1 import data_order_batch

SALT = 0xDA7B


def labels_of(n=600, classes=10, seed=0):
  return np.random.default_rng(seed).integers(0, classes, n)


# --- Literal transcriptions -------------------------------------------------------------

def ref_shards(labels, n_workers, seed):
  perm = np.random.default_rng([seed, SALT]).permutation(len(labels))
  m = len(labels) // n_workers
  return [sorted(perm[k * m:(k + 1) * m].tolist()) for k in range(n_workers)]


def ref_dirichlet(labels, n_workers, alpha, seed):
  rng = np.random.default_rng([seed, SALT])
  parts = [[] for _ in range(n_workers)]
  for y in sorted(set(labels.tolist())):
    ex = [i for i in range(len(labels)) if labels[i] == y]
    perm = rng.permutation(np.array(ex))
    q = rng.dirichlet([alpha] * n_workers)
    lo = 0
    for k in range(n_workers):
      hi = len(perm) if k == n_workers - 1 else int(np.sum(q[:k + 1]) * len(perm))
      parts[k] += perm[lo:hi].tolist()
      lo = hi
  return [sorted(p) for p in parts]


def ref_labels(labels, n_workers, c, seed):
  classes = sorted(set(labels.tolist()))
  C = len(classes)
  held = {k: {(k * c + j) % C for j in range(c)} for k in range(n_workers)}
  rng = np.random.default_rng([seed, SALT])
  parts = [[] for _ in range(n_workers)]
  for i, y in enumerate(classes):
    ex = np.array([e for e in range(len(labels)) if labels[e] == y])
    perm = rng.permutation(ex)
    holders = [k for k in range(n_workers) if i in held[k]]
    if not holders:
      continue
    h = len(holders)
    base, extra = divmod(len(perm), h)  # np.array_split: the first `extra` get one more
    lo = 0
    for r, k in enumerate(holders):
      size = base + (1 if r < extra else 0)
      parts[k] += perm[lo:lo + size].tolist()
      lo += size
  return [sorted(p) for p in parts]


def ref_worker_batch(part, k, j, batch_size, seed):
  per_pass = len(part) // batch_size
  p, i = divmod(j, per_pass)
  perm = np.random.default_rng([seed, SALT, k, p]).permutation(len(part))
  return np.asarray(part)[perm[i * batch_size:(i + 1) * batch_size]]


def ref_owners(kinds, workers, n_workers):
  owner = list(range(n_workers))
  for kind, w in zip(kinds, workers, strict=True):
    if kind in (S.APPLY, S.DISCARD):
      owner.append(int(w))
  count, seen = [], {}
  for w in owner:
    count.append(seen.get(w, 0))
    seen[w] = seen.get(w, 0) + 1
  return owner, count


# --- Partitions --------------------------------------------------------------------------

@pytest.mark.parametrize("n_workers,seed", [(1, 0), (4, 3), (7, 11)])
def test_shards_partition(n_workers, seed):
  y = labels_of(603)
  got = P.Shards().partition(y, n_workers, 8, seed)
  assert [p.tolist() for p in got] == ref_shards(y, n_workers, seed)


@pytest.mark.parametrize("alpha,n_workers,seed", [(0.5, 4, 1), (1.0, 3, 2), (100.0, 5, 0)])
def test_dirichlet_partition(alpha, n_workers, seed):
  y = labels_of(800)
  got = P.Dirichlet(alpha).partition(y, n_workers, 4, seed)
  assert [p.tolist() for p in got] == ref_dirichlet(y, n_workers, alpha, seed)
  assert sorted(sum((p.tolist() for p in got), [])) == list(range(800))


def test_dirichlet_inf_is_shards():
  y = labels_of()
  got = P.Dirichlet(float("inf")).partition(y, 4, 8, 5)
  assert [p.tolist() for p in got] == ref_shards(y, 4, 5)


@pytest.mark.parametrize("n_workers,c", [(5, 2), (4, 3), (3, 1), (12, 2)])
def test_labels_partition(n_workers, c):
  y = labels_of(900)
  got = P.Labels(c).partition(y, n_workers, 4, 7)
  assert [p.tolist() for p in got] == ref_labels(y, n_workers, c, 7)
  for k, part in enumerate(got):
    assert set(y[part].tolist()) == {(k * c + j) % 10 for j in range(c)}


def test_dirichlet_too_few_examples_is_one_line_error():
  with pytest.raises(ConfigError) as e:
    P.Dirichlet(0.01).partition(labels_of(300), 8, 32, 0)
  msg = str(e.value)
  assert "\n" not in msg and "alpha=0.01" in msg and "N=8" in msg and "B=32" in msg


@pytest.mark.parametrize("bad", [lambda: P.Dirichlet(0.0), lambda: P.Dirichlet("x"),
                                 lambda: P.Labels(0), lambda: P.Shards().validate(0),
                                 lambda: P.Labels(11).partition(labels_of(), 2, 4, 0)])
def test_bad_options_are_config_errors(bad):
  with pytest.raises(ConfigError):
    bad()


def test_registry_names():
  assert set(P.PLACEMENTS) == {"global", "shards", "dirichlet", "labels"}
  assert P.PLACEMENTS["global"].is_default and not P.Shards.is_default


# --- Streams -----------------------------------------------------------------------------

@pytest.mark.parametrize("placement", [P.Shards(), P.Dirichlet(0.7), P.Labels(2)])
def test_worker_streams(placement):
  y, n_workers, batch_size, seed = labels_of(500), 4, 8, 9
  order = P.worker_data_order(placement, y, n_workers, batch_size, seed)
  parts = placement.partition(y, n_workers, batch_size, seed)
  workers = np.repeat(np.arange(n_workers), 40)
  local = np.tile(np.arange(40), n_workers)
  got = order.batches(workers, local)
  want = np.stack([ref_worker_batch(parts[k].tolist(), k, j, batch_size, seed)
                   for k, j in zip(workers, local, strict=True)])
  np.testing.assert_array_equal(got, want)


def test_streams_deterministic_per_seed():
  y = labels_of()
  a = P.worker_data_order(P.Dirichlet(1.0), y, 3, 8, 4).batches([0, 1, 2], [0, 5, 50])
  b = P.worker_data_order(P.Dirichlet(1.0), y, 3, 8, 4).batches([0, 1, 2], [0, 5, 50])
  c = P.worker_data_order(P.Dirichlet(1.0), y, 3, 8, 5).batches([0, 1, 2], [0, 5, 50])
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_one_shard_is_the_global_stream():
  y, batch_size, seed = labels_of(203), 16, 6
  order = P.worker_data_order(P.Shards(), y, 1, batch_size, seed)
  got = order.batches(np.zeros(60, int), np.arange(60))
  want = np.stack([data_order_batch(seed, 203, batch_size, j) for j in range(60)])
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(order.batches(np.arange(60)), want)


# --- Engine: which batch a job computes on -----------------------------------------------

def test_job_owners():
  sched = S.make_schedule(dj.heterogeneous(), 5, 200, seed=2,
                          restart_rule=lambda step, read: step - read >= 3)
  owner, count = P.job_owners(sched.event_kind, sched.event_worker, 5)
  want_owner, want_count = ref_owners(sched.event_kind.tolist(), sched.event_worker, 5)
  assert owner.tolist() == want_owner and count.tolist() == want_count


def test_simulator_chunk_uses_each_workers_stream():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(256, 8, 8)).astype(np.float32), rng.integers(0, 10, 256)
  n_workers, batch_size = 4, 8
  model = dj.flax_model(models.MLP((16,)), (8, 8))
  sim = dj.Simulator(model, "asgd", x, y, num_workers=n_workers, batch_size=batch_size,
                     timing=dj.heterogeneous(), seeds=3)
  sim.orders = [P.worker_data_order(P.Shards(), y, n_workers, batch_size, s)
                for s in sim.spec.seeds]
  schedules = plan.schedules(sim.spec, 30, 30)
  xs, _ = plan.chunk_inputs(sim.spec, schedules, 0, 30, None, orders=sim.orders)
  indices = np.asarray(xs[2]).reshape(-1, batch_size)
  sched = schedules[0]
  owner, count = ref_owners(sched.event_kind.tolist(), sched.event_worker, n_workers)
  parts = ref_shards(y, n_workers, sim.spec.seeds[0])
  first, last = sched.events_of_steps(0, 30)
  want = [ref_worker_batch(parts[owner[d]], owner[d], count[d], batch_size, sim.spec.seeds[0])
          for d in sched.event_dispatch[first:last]]
  np.testing.assert_array_equal(indices, np.stack(want))


@pytest.mark.parametrize("per_job,lengths", [(3, None), (4, [1, 4, 2])])
def test_local_sgd_jobs_take_their_workers_next_batches(per_job, lengths):
  # Dispatch d (worker w, its c-th job) takes w's local batches after those of w's earlier
  # jobs: c·H … c·H + H − 1 (one H), or Σ of w's earlier H_w plus 0 … H_w − 1 (DyLU).
  y, n_workers, batch_size, seed = labels_of(400), 3, 4, 2
  sched = S.make_schedule(dj.heterogeneous(), n_workers, 60, seed=1)
  order = P.worker_data_order(P.Shards(), y, n_workers, batch_size, seed)
  parts = ref_shards(y, n_workers, seed)
  owner, count = ref_owners(sched.event_kind.tolist(), sched.event_worker, n_workers)
  h = [per_job] * n_workers if lengths is None else lengths
  stream, used = [], [0] * n_workers  # the engine's global batch numbers, in dispatch order
  want = []
  for d, w in enumerate(owner):
    for i in range(h[w]):
      stream.append(len(stream))
      want.append(ref_worker_batch(parts[w], w, used[w] + i, batch_size, seed))
    used[w] += h[w]
    assert used[w] == (count[d] + 1) * h[w]
  got = order.bound(sched, n_workers, per_job, lengths).batches(np.array(stream))
  np.testing.assert_array_equal(got, np.stack(want))


def test_simulator_chunk_with_restarts_keeps_each_jobs_batch():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(192, 8, 8)).astype(np.float32), rng.integers(0, 10, 192)
  n_workers, batch_size = 3, 8
  model = dj.flax_model(models.MLP((16,)), (8, 8))
  sim = dj.Simulator(model, "asgd", x, y, num_workers=n_workers, batch_size=batch_size,
                     timing=dj.heterogeneous(), seeds=[4, 5],
                     restart_rule=lambda step, read: step - read >= 2)
  sim.orders = [P.worker_data_order(P.Labels(4), y, n_workers, batch_size, s)
                for s in sim.spec.seeds]
  schedules = plan.schedules(sim.spec, 20, 20)
  rows = plan.rows_per_chunk(sim.spec, schedules, 20, 20)
  xs, _ = plan.chunk_inputs(sim.spec, schedules, 0, 20, rows, orders=sim.orders)
  for r, seed in enumerate(sim.spec.seeds):
    sched = schedules[r]
    owner, count = ref_owners(sched.event_kind.tolist(), sched.event_worker, n_workers)
    parts = ref_labels(y, n_workers, 4, seed)
    first, last = sched.events_of_steps(0, 20)
    want = [ref_worker_batch(parts[owner[d]], owner[d], count[d], batch_size, seed)
            for d in sched.event_dispatch[first:last]]
    got = np.asarray(xs[2][r]).reshape(-1, batch_size)[:last - first]
    np.testing.assert_array_equal(got, np.stack(want))


def test_per_worker_stream_refuses_global_batch_numbers():
  order = P.worker_data_order(P.Shards(), labels_of(), 3, 8, 0)
  with pytest.raises(ValueError):
    order.batches(np.arange(4))


def test_simulator_reads_the_placement_from_the_environment():
  from types import SimpleNamespace

  from dana_jax.engine.simulator import _data_orders
  y = labels_of(200)
  spec = SimpleNamespace(num_examples=200, batch_size=8, seeds=[1, 2], num_workers=4,
                         synchronous=False, environment=SimpleNamespace(placement=P.Shards()),
                         algorithm=SimpleNamespace(name="asgd"))
  orders = _data_orders(spec, None, y)
  assert [o.parts[0].tolist() for o in orders] == [ref_shards(y, 4, s)[0] for s in (1, 2)]
  assert type(_data_orders(SimpleNamespace(**{**vars(spec), "environment": None}), None,
                           y)[0]).__name__ == "DataOrder"
  with pytest.raises(ConfigError):
    _data_orders(SimpleNamespace(**{**vars(spec), "synchronous": True}), None, y)


# --- Training on per-worker data, end to end --------------------------------------------

@pytest.mark.parametrize("placement,parts_of", [
    (dict(name="shards"), lambda y, n, seed: ref_shards(y, n, seed)),
    (dict(name="dirichlet", alpha=0.5), lambda y, n, seed: ref_dirichlet(y, n, 0.5, seed)),
])
def test_training_on_per_worker_data_matches_the_reference(placement, parts_of):
  """NAG at N = 3 with links, failures and per-worker data: the engine's θ is the replay of
  the §8 reference's events where dispatch d's batch is its worker's own (the numpy
  transcriptions above), and each worker's logged train error is its θ's error on the
  first m examples of its own partition."""
  import jax
  from jax.flatten_util import ravel_pytree

  from dana_jax.environment import make_environment
  from tests.engine.test_environment_engine import reference_events
  from tests.references.replay_s8 import replay_training
  x, y, _, _ = data.digits()
  x, y, n, batch_size = x[:300], y[:300], 3, 8
  model = dj.flax_model(models.MLP((16,)), (8, 8))
  env = make_environment(compute=dict(name="heterogeneous"),
                         links=dict(latency=[2.0, 3.0, 5.0], bandwidth=5e3),
                         availability=dict(name="up_down", mtbf=700.0, mttr=200.0),
                         placement=placement)
  sim = dj.Simulator(model, "nag", x, y, num_workers=n, batch_size=batch_size,
                     hyperparams=dj.Hyperparams(0.05, 0.9, 1e-3), environment=env)
  steps = 30
  result = dj.simulate(sim, steps, chunk_steps=10, progress=False,
                       train_eval_data=(x[:64], y[:64]))
  events = reference_events(sim, steps)
  sched = result.schedules[0]
  assert sched.num_failures > 0
  assert [(e[0], e[1], e[3]) for e in events] == list(zip(
      sched.event_kind.tolist(), sched.event_worker.tolist(), sched.event_dispatch.tolist(),
      strict=True))
  seed = sim.spec.seeds[0]
  parts = parts_of(y, n, seed)
  owner, count = ref_owners([e[0] for e in events], [e[1] for e in events], n)
  examples = lambda d, j: ref_worker_batch(parts[owner[d]], owner[d], count[d], batch_size,
                                           seed)
  params0, state0 = model.init(jax.random.fold_in(jax.random.key(0), 1))
  theta, _ = replay_training(model, "nag", x, y, events, num_workers=n, batch_size=batch_size,
                             lr=lambda t: 0.05, momentum=0.9, weight_decay=1e-3, seed=seed,
                             params0=params0, state0=state0, batch_examples=examples)
  np.testing.assert_allclose(np.asarray(ravel_pytree(result.state.params)[0]),
                             np.asarray(ravel_pytree(theta)[0]), rtol=2e-4, atol=2e-5)
  # Each worker's own train error, at the end.
  m = min(1000, min(len(p) for p in parts))
  want = [dj.evaluate(model, result.state.params, result.state.model_state,
                      x[np.asarray(p[:m])], y[np.asarray(p[:m])])["error"] for p in parts]
  got = result.history[-1]["replicas"][0]["train/error_by_worker"]
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert len(set(np.round(got, 6))) > 1 or placement["name"] == "shards"
